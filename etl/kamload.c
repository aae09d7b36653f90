/*
 * kamload.c - Kamailio acc tables -> legs and calls, exactly once (kamload.h).
 */
#include "kamload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "exitcode.h"
#include "kamdb.h"
#include "kamrow.h"
#include "load.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

static const char *table_of(const struct kam_source *k, int kind)
{
	return kind == KAM_CDRS ? k->cdrs_table : kind == KAM_MISSED ? k->missed_table : k->acc_table;
}

/* "<alias>.<quoted column>" or NULL when the column is not mapped */
static void col(struct buf *b, const struct kamdb *db, const char *alias, const char *name)
{
	if (!name || !*name) {
		buf_puts(b, "NULL");
		return;
	}
	char q[80];
	kamdb_ident(db, name, q, sizeof q);
	buf_printf(b, "%s.%s", alias, q);
}

char *kam_select_sql(const struct kamdb *db, const struct kam_source *k, int kind, int64_t last_id)
{
	const struct kam_columns *m = &k->col;
	struct buf b;
	buf_init(&b, 1024);
	char t[80], id[80], method[80], callid[80];
	kamdb_ident(db, table_of(k, kind), t, sizeof t);
	kamdb_ident(db, m->id, id, sizeof id);
	kamdb_ident(db, "method", method, sizeof method);
	kamdb_ident(db, *m->callid ? m->callid : "callid", callid, sizeof callid);
	buf_puts(&b, "SELECT ");
	/* the order of enum kam_field */
	col(&b, db, "r", m->id);
	buf_puts(&b, ", ");
	col(&b, db, "r", kind == KAM_CDRS ? m->start_time : NULL);
	buf_puts(&b, ", ");
	if (kind == KAM_ACC)
		col(&b, db, "e", m->time); /* the BYE's time */
	else
		col(&b, db, "r", kind == KAM_CDRS ? m->end_time : NULL);
	buf_puts(&b, ", ");
	col(&b, db, "r", kind == KAM_CDRS ? m->duration : NULL);
	buf_puts(&b, ", ");
	col(&b, db, "r", kind == KAM_CDRS ? m->answer_time : NULL);
	buf_puts(&b, ", ");
	col(&b, db, "r", kind == KAM_CDRS ? NULL : m->time);
	const char *rest[] = { m->callid, m->sip_code, m->sip_reason, m->src_user, m->src_domain, m->src_ip,
			       m->dst_user, m->dst_domain, m->carrier, m->accountcode,
			       kind == KAM_CDRS ? m->setup_time : NULL, kind == KAM_CDRS ? m->failure_time : NULL };
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
		buf_puts(&b, ", ");
		col(&b, db, "r", rest[i]);
	}
	buf_printf(&b, " FROM %s r", t);
	if (kind == KAM_ACC) {
		/* an answered initial INVITE and the first BYE of its Call-ID after it */
		buf_printf(&b, " LEFT JOIN %s e ON e.%s = (SELECT min(x.%s) FROM %s x WHERE x.%s = r.%s AND x.%s = 'BYE' "
			       "AND x.%s > r.%s)", t, id, id, t, callid, callid, method, id, id);
	}
	buf_printf(&b, " WHERE r.%s > %" PRId64, id, last_id);
	if (kind == KAM_ACC) {
		char code[80];
		kamdb_ident(db, m->sip_code, code, sizeof code);
		buf_printf(&b, " AND r.%s = 'INVITE' AND r.%s LIKE '2%%' AND NOT EXISTS (SELECT 1 FROM %s p WHERE p.%s = "
			       "r.%s AND p.%s = 'INVITE' AND p.%s < r.%s)", method, code, t, callid, callid, method, id, id);
	}
	buf_printf(&b, " ORDER BY r.%s LIMIT %" PRId64, id, k->batch_rows);
	return b.data; /* owned by the caller */
}

/* one batch being built */
struct kbatch {
	const struct source_config *s;
	const struct legclass *lc;
	const struct etl_config *cfg;
	int kind;
	struct buf cdr, call;
	uint64_t legs, rows, skipped;
	int64_t last_id;
	int months[LOAD_MONTHS];
	size_t nmonths;
	int held;        /* stop before this row: an acc INVITE whose BYE is not there
			  * yet, or a young row after a gap in the keys */
	uint64_t now_us;
	struct kam_leg leg;
};

static int on_row(void *arg, const char *const *v, int n)
{
	struct kbatch *b = arg;
	if (n != KF_N)
		return 1;
	char err[256];
	if (b->kind == KAM_ACC && !v[KF_END]) {
		/* the call is still up, unless it is older than the grace period */
		uint64_t t = 0;
		if (kam_parse_time(v[KF_TIME], b->s->kamailio.time_mode != 4, &t) == 0 &&
		    t + b->cfg->grace_ms * 1000u > b->now_us) {
			b->held = 1;
			return 1;
		}
	}
	if (kam_leg_build(&b->s->kamailio, (enum kam_kind)b->kind, v, b->s->name, &b->leg, err, sizeof err) < 0) {
		log_warn("source %s: %s: %s; row skipped", b->s->name, table_of(&b->s->kamailio, b->kind), err);
		b->skipped++;
		/* the key still moves on when it is a number */
		if (v[KF_ID] && strspn(v[KF_ID], "0123456789") == strlen(v[KF_ID]) && strlen(v[KF_ID]) < 16)
			b->last_id = strtoll(v[KF_ID], NULL, 10);
		b->rows++;
		return 0;
	}
	/* keys are handed out at insert, rows become visible at commit: a gap
	 * before a young row may be an insert still committing (wait for it);
	 * before an old one it is a rolled-back insert (pass it).  Not in acc,
	 * where the INVITEs read are not every key of the table */
	if (b->kind != KAM_ACC && b->leg.id != b->last_id + 1 && b->leg.row.end_us + b->s->kamailio.settle_ms * 1000u > b->now_us) {
		b->held = 1;
		return 1;
	}
	if (b->kind == KAM_ACC && !v[KF_END])
		b->leg.row.incomplete = b->leg.call.incomplete = true;
	b->last_id = b->leg.id;
	load_note_month(b->months, &b->nmonths, b->leg.row.start_us);
	/* one leg per call, named by its linkedid: the leg is written with its
	 * call_id and the call with the leg's facts, each once */
	struct leg_extra e;
	struct leg_facts f;
	legclass_apply(b->lc, &b->leg.row, &e);
	load_leg_row(&b->cdr, &e, &b->leg.row, b->s->name);
	load_leg_row_end(&b->cdr, b->leg.row.linkedid);
	load_leg_facts(&e, &f);
	call_facts_of_leg(&b->leg.call.facts, &f);
	load_call_row(&b->call, &b->leg.call, b->s->name);
	b->legs++;
	b->rows++;
	return 0;
}

static int checkpoint_get(PGconn *c, const char *src, const char *tbl, int lock, int64_t *last, char *err,
			  size_t errlen)
{
	const char *v[2] = { src, tbl };
	PGresult *r = PQexecParams(c, lock ? "SELECT last_id FROM kamailio_checkpoint WHERE source = $1 AND tbl = $2 "
					     "FOR UPDATE"
					   : "SELECT last_id FROM kamailio_checkpoint WHERE source = $1 AND tbl = $2",
				   2, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_result_error(r, c, err, errlen);
		PQclear(r);
		return -1;
	}
	*last = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return 0;
}

static int commit(PGconn *c, struct kbatch *b, const char *tbl, int64_t from, char *err, size_t errlen)
{
	int pending[LOAD_MONTHS];
	size_t npending = 0;
	int64_t at;
	if (load_begin(c, err, errlen) < 0)
		goto fail;
	if (checkpoint_get(c, b->s->name, tbl, 1, &at, err, errlen) < 0)
		goto fail;
	if (at != from) {
		snprintf(err, errlen, "XX000: source %s: the checkpoint of %s moved under this run (another loader?)",
			 b->s->name, tbl);
		goto fail;
	}
	if (load_store_rows(c, b->s->name, NULL, NULL, &b->cdr, &b->call, b->legs, b->legs, b->months, b->nmonths,
			    pending, &npending, NULL, err, errlen) < 0)
		goto fail;
	char *esc = PQescapeLiteral(c, b->s->name, strlen(b->s->name));
	if (!esc) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		goto fail;
	}
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT cdrflow_after_batch(%s, 0, 0)", esc);
	PQfreemem(esc);
	if (b->legs && pgc_exec(c, sql, err, errlen) < 0)
		goto fail;
	char last[24], rows[24], skipped[24];
	snprintf(last, sizeof last, "%" PRId64, b->last_id);
	snprintf(rows, sizeof rows, "%" PRIu64, b->rows);
	snprintf(skipped, sizeof skipped, "%" PRIu64, b->skipped);
	const char *v[5] = { b->s->name, tbl, last, rows, skipped };
	PGresult *r = PQexecParams(c, "INSERT INTO kamailio_checkpoint (source, tbl, last_id, rows, skipped) VALUES ($1, "
				      "$2, $3, $4, $5) ON CONFLICT (source, tbl) DO UPDATE SET last_id = excluded.last_id, "
				      "rows = kamailio_checkpoint.rows + excluded.rows, skipped = kamailio_checkpoint.skipped "
				      "+ excluded.skipped, updated_at = excluded.updated_at",
				   5, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		pgc_result_error(r, c, err, errlen);
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (pgc_exec(c, "COMMIT", err, errlen) < 0)
		goto fail;
	load_months_committed(pending, npending);
	load_refresh_statistics(c);
	return 0;
fail:;
	char ignored[256];
	pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	return -1;
}

/* One table of one source up to its end.  An exit code. */
static int load_table(PGconn *c, struct kamdb *db, const struct etl_config *cfg, const struct legclass *lc,
		      const struct source_config *s, int kind, struct kam_stats *st, char *err, size_t errlen)
{
	const char *tbl = table_of(&s->kamailio, kind);
	struct kbatch b;
	memset(&b, 0, sizeof b);
	b.s = s;
	b.lc = lc;
	b.cfg = cfg;
	b.kind = kind;
	buf_init(&b.cdr, 0);
	buf_init(&b.call, 0);
	int rc = EXIT_OK;
	for (;;) {
		int64_t from;
		if (checkpoint_get(c, s->name, tbl, 0, &from, err, errlen) < 0) {
			rc = pgc_error_exit(c, err);
			break;
		}
		buf_reset(&b.cdr);
		buf_reset(&b.call);
		b.legs = b.rows = b.skipped = 0;
		b.nmonths = 0;
		b.held = 0;
		b.last_id = from;
		b.now_us = clock_real_us();
		char *sql = kam_select_sql(db, &s->kamailio, kind, from);
		char qerr[512];
		long n = kamdb_query(db, sql, on_row, &b, qerr, sizeof qerr);
		free(sql);
		if (n < 0) {
			snprintf(err, errlen, "source %s: reading %s: %s", s->name, tbl, qerr);
			rc = EXIT_UNAVAILABLE;
			break;
		}
		if (b.rows == 0)
			break;
		if (commit(c, &b, tbl, from, err, errlen) < 0) {
			rc = pgc_error_exit(c, err);
			break;
		}
		st->rows += b.rows;
		st->legs += b.legs;
		st->calls += b.legs;
		st->skipped += b.skipped;
		st->batches++;
		log_debug("source %s: %s: %" PRIu64 " rows up to key %" PRId64, s->name, tbl, b.rows, b.last_id);
		if (b.held || n < s->kamailio.batch_rows)
			break;
	}
	buf_release(&b.cdr);
	buf_release(&b.call);
	return rc;
}

/* when each source was read last (monotonic ms), for --follow, and the
 * last problem logged for it (said once, until it changes or goes) */
static struct {
	char *name;
	uint64_t at_ms;
	char *down;
} *last_read;
static size_t nlast;

static int due(const struct source_config *s, int due_only)
{
	uint64_t now = clock_mono_ms();
	for (size_t i = 0; i < nlast; i++) {
		if (strcmp(last_read[i].name, s->name))
			continue;
		if (due_only && now - last_read[i].at_ms < s->kamailio.poll_ms)
			return 0;
		last_read[i].at_ms = now;
		return 1;
	}
	last_read = xrealloc(last_read, (nlast + 1) * sizeof *last_read);
	last_read[nlast].name = xstrdup(s->name);
	last_read[nlast].at_ms = now;
	last_read[nlast].down = NULL;
	nlast++;
	return 1;
}

/* --follow: a source that cannot be read is logged once per new message;
 * one that reads again is said to be back.  msg NULL: it read. */
static void source_state(const struct source_config *s, const char *msg)
{
	for (size_t i = 0; i < nlast; i++) {
		if (strcmp(last_read[i].name, s->name))
			continue;
		if (!msg) {
			if (last_read[i].down)
				log_info("source %s: reading again", s->name);
			free(last_read[i].down);
			last_read[i].down = NULL;
		} else if (!last_read[i].down || strcmp(last_read[i].down, msg)) {
			log_error("%s; retrying (said once)", msg);
			free(last_read[i].down);
			last_read[i].down = xstrdup(msg);
		}
		return;
	}
}

void kam_load_release(void)
{
	for (size_t i = 0; i < nlast; i++) {
		free(last_read[i].name);
		free(last_read[i].down);
	}
	free(last_read);
	last_read = NULL;
	nlast = 0;
}

int kam_load_all(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, int due_only,
		 struct kam_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	int rc = EXIT_OK;
	for (size_t i = 0; i < cfg->nsources && rc == EXIT_OK; i++) {
		const struct source_config *s = &cfg->sources[i];
		if (s->type != SOURCE_KAMAILIO || !due(s, due_only))
			continue;
		struct kamdb *db = kamdb_open(s, err, errlen);
		if (!db) {
			if (due_only) {
				source_state(s, err);
				continue;
			}
			return EXIT_UNAVAILABLE;
		}
		st->sources++;
		for (int kind = 0; kind < KAM_KINDS && rc == EXIT_OK; kind++) {
			if (!*table_of(&s->kamailio, kind))
				continue;
			rc = load_table(c, db, cfg, lc, s, kind, st, err, errlen);
			if (rc == EXIT_UNAVAILABLE && due_only && PQstatus(c) == CONNECTION_OK) {
				source_state(s, err);
				rc = EXIT_OK;
				kamdb_close(db);
				db = NULL;
				break;
			}
		}
		if (db && rc == EXIT_OK && due_only)
			source_state(s, NULL);
		kamdb_close(db);
	}
	return rc;
}

/*
 * calls.c - "cdrflow-query calls" (one line per call, or per leg with
 * --legs) and the streaming of any query into a struct qout.
 *
 * Every filter value is a bind parameter.  Index use (docs/query.md):
 *   period            call (start) / cdr (calldate, dst)
 *   --tenant          call (tenant, start) / cdr (tenant, calldate)
 *   --src             cdr (src, calldate) for legs; calls filter call.src
 *   --dst (E.164)     cdr (dst_e164, calldate): a range on the prefix
 *   --dst-raw         cdr (calldate, dst) within the period
 * For calls, leg filters (--dst, --dst-raw, --trunk) select the call_ids
 * of matching legs first (an InitPlan array), then the calls by
 * call (call_id).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "e164.h"
#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "qdb.h"
#include "query.h"
#include "xalloc.h"

char *q_prefix_upper(const char *p)
{
	char *u = xstrdup(p);
	size_t n = strlen(u);
	while (n > 0 && u[n - 1] == '9')
		n--;
	if (n == 0 || !isdigit((unsigned char)u[n - 1])) {
		free(u);
		return NULL;
	}
	u[n - 1]++;
	u[n] = '\0';
	return u;
}

int q_has_column(PGconn *c, const char *table, const char *column, char *err, size_t errlen)
{
	struct qsql q;
	char *v = NULL;
	qsql_init(&q);
	qsql_text(&q, "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(");
	qsql_param(&q, table);
	qsql_text(&q, ") AND attname = ");
	qsql_param(&q, column);
	qsql_text(&q, " AND attnum > 0 AND NOT attisdropped");
	int rc = qdb_value(c, &q, &v, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	rc = v && strcmp(v, "0") ? 1 : 0;
	free(v);
	return rc;
}

/* ---------------------------------------------------------------- streaming into qout */

struct emit {
	struct qout q;
	unsigned long long rows;
	const char **vals;
	int write_failed;
};

static enum qout_kind kind_of(Oid t)
{
	switch (t) {
	case 20: case 21: case 23: case 700: case 701: case 1700: return QOUT_NUMBER;
	case 16: return QOUT_BOOL;
	default: return QOUT_TEXT;
	}
}

static int emit_begin(void *arg, const PGresult *r)
{
	struct emit *e = arg;
	int n = PQnfields(r);
	const char **names = xcalloc((size_t)n + 1, sizeof *names);
	enum qout_kind *kinds = xcalloc((size_t)n + 1, sizeof *kinds);
	for (int i = 0; i < n; i++) {
		names[i] = PQfname(r, i);
		kinds[i] = kind_of(PQftype(r, i));
	}
	qout_begin(&e->q, (size_t)n, names, kinds);
	free(names);
	free(kinds);
	e->vals = xcalloc((size_t)n + 1, sizeof *e->vals);
	return 0;
}

static int emit_row(void *arg, const PGresult *r, int row)
{
	struct emit *e = arg;
	for (size_t i = 0; i < e->q.ncols; i++)
		e->vals[i] = PQgetisnull(r, row, (int)i) ? NULL : PQgetvalue(r, row, (int)i);
	e->rows++;
	if (qout_row(&e->q, e->vals) < 0) {
		e->write_failed = 1;
		return -1;
	}
	return 0;
}

/* Run q, print its rows in o's format; the exit code. */
int q_emit(PGconn *c, const struct qsql *q, const struct qopts *o, unsigned long long *rows)
{
	struct emit e;
	char err[1024];
	memset(&e, 0, sizeof e);
	qout_init(&e.q, o->fmt, o->out);
	e.q.header = o->header;
	struct qdb_sink sink = { emit_begin, emit_row, &e };
	int rc = qdb_stream(c, q, &sink, err, sizeof err);
	int ex = EXIT_OK;
	if (rc < 0 && e.write_failed) {
		log_error("cannot write the output: %s", strerror(errno ? errno : EIO));
		ex = EXIT_IOERR;
	} else if (rc < 0) {
		log_error("query failed: %s", err);
		ex = pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	if (e.vals && qout_end(&e.q) < 0 && ex == EXIT_OK) {
		log_error("cannot write the output: %s", strerror(errno ? errno : EIO));
		ex = EXIT_IOERR;
	}
	free(e.vals);
	qout_release(&e.q);
	if (rows)
		*rows = e.rows;
	return ex;
}

/* EXPLAIN (FORMAT JSON) of q, printed as it is (one JSON document). */
int q_explain(PGconn *c, const struct qsql *q, const struct qopts *o)
{
	struct qsql e;
	PGresult *r;
	char err[1024];
	qsql_init(&e);
	qsql_text(&e, "EXPLAIN (FORMAT JSON) ");
	qsql_text(&e, q->sql.data);
	for (size_t i = 0; i < q->n; i++) { /* same parameters, same numbers */
		if (e.n == e.cap) {
			e.cap = e.cap ? e.cap * 2 : 8;
			e.params = xrealloc(e.params, e.cap * sizeof *e.params);
		}
		e.params[e.n++] = q->params[i] ? xstrdup(q->params[i]) : NULL;
	}
	int rc = qdb_exec(c, &e, &r, err, sizeof err);
	qsql_release(&e);
	if (rc < 0) {
		log_error("explain failed: %s", err);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(o->out, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	return fflush(o->out) == 0 ? EXIT_OK : EXIT_IOERR;
}

/* ---------------------------------------------------------------- filters */

static const char *const outcomes[] = { "answered", "busy", "no_answer", "failed", "congestion", NULL };

/* "NO ANSWER", "no-answer", "No_Answer" -> "no_answer" (calls) or "NO ANSWER" (legs) */
static char *norm_disposition(const char *s, int legs)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (*p == ' ' || *p == '-') ? '_' : (char)tolower((unsigned char)*p);
	int ok = 0;
	for (int i = 0; outcomes[i]; i++)
		ok |= !strcmp(d, outcomes[i]);
	if (!ok) {
		free(d);
		return NULL;
	}
	if (legs)
		for (char *p = d; *p; p++)
			*p = *p == '_' ? ' ' : (char)toupper((unsigned char)*p);
	return d;
}

/* the trunk part of a channel expression: "SIP/loop-0000000f" -> "SIP/loop" */
#define TRUNK_OF(col) "regexp_replace(" col ", '-[0-9a-fA-F]+(;[0-9]+)?$', '')"

/* src: exact, or a prefix when it ends with '*' */
static void add_src(struct qsql *q, const char *col, const char *src)
{
	size_t n = strlen(src);
	if (n && src[n - 1] == '*') {
		char *p = xstrndup(src, n - 1);
		qsql_text(q, " AND starts_with(");
		qsql_text(q, col);
		qsql_text(q, ", ");
		qsql_param(q, p);
		qsql_text(q, ")");
		free(p);
	} else {
		qsql_text(q, " AND ");
		qsql_text(q, col);
		qsql_text(q, " = ");
		qsql_param(q, src);
	}
}

/* The leg filters (alias l) that need cdr: --dst, --dst-raw, --trunk. */
static void add_leg_filters(struct qsql *q, const struct qopts *o, const char *e164, const char *upper)
{
	if (e164) {
		qsql_text(q, " AND l.dst_e164 >= ");
		size_t pe = qsql_param(q, e164);
		if (upper) {
			qsql_text(q, " AND l.dst_e164 < ");
			qsql_param(q, upper);
		}
		qsql_text(q, " AND starts_with(l.dst_e164, ");
		qsql_ref(q, pe);
		qsql_text(q, ")");
	}
	if (o->dst_raw) {
		size_t n = strlen(o->dst_raw);
		char *p = xstrndup(o->dst_raw, n && o->dst_raw[n - 1] == '*' ? n - 1 : n);
		qsql_text(q, " AND starts_with(l.dst, ");
		qsql_param(q, p);
		qsql_text(q, ")");
		free(p);
	}
	if (o->trunk) {
		qsql_text(q, " AND (" TRUNK_OF("l.channel") " = ");
		size_t pt = qsql_param(q, o->trunk);
		qsql_text(q, " OR " TRUNK_OF("l.dstchannel") " = ");
		qsql_ref(q, pt);
		qsql_text(q, ")");
	}
}

int q_calls(PGconn *c, const struct qopts *o)
{
	char err[1024];
	int rc = EXIT_OK;
	char *e164 = NULL, *upper = NULL, *disp = NULL;
	struct qsql q;
	qsql_init(&q);

	if (o->dst) {
		e164 = e164_prefix(o->dst);
		if (!e164) {
			log_error("--dst \"%s\" is not a number prefix (digits, optional leading + and trailing *); "
				  "use --dst-raw for the dialled string as Asterisk wrote it", o->dst);
			rc = EXIT_USAGE;
			goto out;
		}
		upper = q_prefix_upper(e164);
	}
	if (o->disposition && !(disp = norm_disposition(o->disposition, o->legs))) {
		log_error("unknown --disposition \"%s\" (answered, busy, no_answer, failed, congestion)", o->disposition);
		rc = EXIT_USAGE;
		goto out;
	}
	int has_e164 = q_has_column(c, "cdr", "dst_e164", err, sizeof err);
	int has_mos = q_has_column(c, "call", "worst_mos", err, sizeof err);
	if (has_e164 < 0 || has_mos < 0) {
		log_error("%s", err);
		rc = pgc_exit_for_value(c, err, EXIT_USAGE);
		goto out;
	}
	if (e164 && !has_e164) {
		log_error("--dst needs cdr.dst_e164 (schema migration 0007): run 'cdrflow-etl migrate'");
		rc = EXIT_CONFIG;
		goto out;
	}
	const char *tfmt = (o->fmt == QOUT_JSON || o->fmt == QOUT_JSON_ARRAY) ? "YYYY-MM-DD\"T\"HH24:MI:SS.MSTZH:TZM"
									       : "YYYY-MM-DD HH24:MI:SS";
	if (o->legs) {
		qsql_text(&q, "SELECT to_char(l.calldate, ");
		qsql_param(&q, tfmt);
		qsql_text(&q, ") AS calldate, l.call_id, l.uniqueid, l.src, l.dst");
		if (has_e164)
			qsql_text(&q, ", l.dst_e164");
		qsql_text(&q, ", l.channel, l.dstchannel, l.disposition, l.duration, l.billsec, l.tenant"
			      " FROM cdr l WHERE l.calldate >= ");
		size_t pf = qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz AND l.calldate < ");
		qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz");
		(void)pf;
		if (o->src)
			add_src(&q, "l.src", o->src);
		if (o->tenant) {
			qsql_text(&q, " AND l.tenant = ");
			qsql_param(&q, o->tenant);
		}
		if (disp) {
			qsql_text(&q, " AND l.disposition = ");
			qsql_param(&q, disp);
		}
		if (o->min_billsec) {
			qsql_text(&q, " AND l.billsec >= ");
			qsql_param(&q, o->min_billsec);
			qsql_text(&q, "::integer");
		}
		add_leg_filters(&q, o, e164, upper);
		qsql_text(&q, " ORDER BY l.calldate, l.uniqueid");
	} else {
		qsql_text(&q, "SELECT c.call_id, to_char(c.start, ");
		qsql_param(&q, tfmt);
		qsql_text(&q, ") AS start, c.src, c.dst, c.direction, c.tenant, c.legs, c.total_billsec AS billsec, c.outcome");
		if (has_mos)
			qsql_text(&q, ", round(c.worst_mos::numeric, 2) AS worst_mos");
		qsql_text(&q, " FROM call c WHERE c.start >= ");
		size_t pf = qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz AND c.start < ");
		size_t pt = qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz");
		if (o->src)
			add_src(&q, "c.src", o->src);
		if (o->tenant) {
			qsql_text(&q, " AND c.tenant = ");
			qsql_param(&q, o->tenant);
		}
		if (disp) {
			qsql_text(&q, " AND c.outcome = ");
			qsql_param(&q, disp);
		}
		if (o->min_billsec) {
			qsql_text(&q, " AND c.total_billsec >= ");
			qsql_param(&q, o->min_billsec);
			qsql_text(&q, "::integer");
		}
		if (e164 || o->dst_raw || o->trunk) {
			/* legs start at or after their call: those of the period's
			 * calls start before --to plus a day (longer calls: docs) */
			qsql_text(&q, " AND c.call_id = ANY (ARRAY(SELECT DISTINCT l.call_id FROM cdr l WHERE l.calldate >= ");
			qsql_ref(&q, pf);
			qsql_text(&q, "::timestamptz AND l.calldate < ");
			qsql_ref(&q, pt);
			qsql_text(&q, "::timestamptz + interval '1 day' AND l.call_id IS NOT NULL");
			add_leg_filters(&q, o, e164, upper);
			qsql_text(&q, "))");
		}
		qsql_text(&q, " ORDER BY c.start, c.call_id");
	}
	if (o->limit > 0) {
		char lim[32];
		snprintf(lim, sizeof lim, "%lld", o->limit);
		qsql_text(&q, " LIMIT ");
		qsql_param(&q, lim);
		qsql_text(&q, "::bigint");
	}
	if (o->explain) {
		rc = q_explain(c, &q, o);
		goto out;
	}
	unsigned long long rows = 0;
	rc = q_emit(c, &q, o, &rows);
	if (rc == EXIT_OK && o->limit > 0 && rows == (unsigned long long)o->limit && !o->quiet)
		fprintf(stderr, "cdrflow-query: stopped at --limit %lld rows (--limit 0 shows all)\n", o->limit);
	log_debug("%llu %s", rows, o->legs ? "legs" : "calls");
out:
	qsql_release(&q);
	free(e164);
	free(upper);
	free(disp);
	return rc;
}

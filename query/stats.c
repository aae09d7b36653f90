/*
 * stats.c - "cdrflow-query stats --by hour|day|tenant|trunk|destination".
 *
 * Every figure is a metric of the dictionary (docs/metrics.md "## The
 * metric dictionary", SQL in sql/0016_metrics.sql): this file only chooses
 * the rows and the key, sums the contributions the SQL defines and applies
 * the SQL's ratio and display functions.  It defines no metric itself.
 *
 * Leg metrics come from rollup_hourly_v (the sums, stored) for the whole
 * UTC hours of the period that lie in one local hour (--by hour) or day
 * (--by day) of --tz, from rollup_quarter_hour (the same sums per UTC
 * quarter hour, 0074) for the quarter hours of the hours a local boundary
 * cuts and of the period's ends, and from rollup_leg_v (one row per leg
 * of a call, with the same contributions) for the rest: the minutes off
 * the quarter-hour grid at either end (cdrflow_period_parts, 0059 and
 * 0074, says which).  --source base reads the legs alone.  Call metrics (calls, answered_calls, answer_rate_pct) come from
 * metric_call_v, keyed by the call's start, tenant, trunk and destination
 * country (those of its earliest leg that has one, migration 0016); with
 * the rollup, from its sums per UTC hour, rollup_call_hourly (0046), and
 * per quarter hour, rollup_call_quarter_hour (0074), when the schema has
 * them, for the same hours and quarter hours.
 */
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "qdb.h"
#include "query.h"
#include "xalloc.h"

static const char *const rollup_cols[] = { "hour",	"tenant",    "country",	  "trunk", "disposition", "calls",
					   "answered",	"billsec",   "legs",	  "leg_billsec", "sell_cost",
					   "buy_cost",	"rated",     NULL };

/* Where the rollups answer a period and where the legs do: ranges of
 * the period, from SQL (cdrflow_period_parts, 0059, 0074): the one home of
 * the split.  part[0] ('r'): the hourly rollups' whole UTC hours (less
 * those a local hour or day cuts, for --by hour and day); part[1] ('l'):
 * the legs' (the minutes off the quarter-hour grid at either end; a schema
 * before 0074: the minutes at either end and the cut hours); part[2]
 * ('q'): the quarter-hour rollups' quarter hours (the cut hours', the
 * ends'). */
enum { PART_HOURS, PART_LEGS, PART_QUARTERS, NPARTS };

struct split {
	char **lo[NPARTS], **hi[NPARTS];
	size_t n[NPARTS];
};

static void split_release(struct split *sp)
{
	for (int p = 0; p < NPARTS; p++) {
		for (size_t i = 0; i < sp->n[p]; i++) {
			free(sp->lo[p][i]);
			free(sp->hi[p][i]);
		}
		free(sp->lo[p]);
		free(sp->hi[p]);
	}
	memset(sp, 0, sizeof *sp);
}

static void split_add(struct split *sp, int p, const char *lo, const char *hi)
{
	sp->lo[p] = xrealloc(sp->lo[p], (sp->n[p] + 1) * sizeof *sp->lo[p]);
	sp->hi[p] = xrealloc(sp->hi[p], (sp->n[p] + 1) * sizeof *sp->hi[p]);
	sp->lo[p][sp->n[p]] = xstrdup(lo);
	sp->hi[p][sp->n[p]] = xstrdup(hi);
	sp->n[p]++;
}

/* The quarter hours read from the legs (no quarter-hour rollups to read). */
static void split_quarters_to_legs(struct split *sp)
{
	for (size_t i = 0; i < sp->n[PART_QUARTERS]; i++) {
		split_add(sp, PART_LEGS, sp->lo[PART_QUARTERS][i], sp->hi[PART_QUARTERS][i]);
		free(sp->lo[PART_QUARTERS][i]);
		free(sp->hi[PART_QUARTERS][i]);
	}
	sp->n[PART_QUARTERS] = 0;
}

/* 1 usable (sp filled), 0 not (why in *why), -1 query error */
static int rollup_usable(PGconn *c, const struct qopts *o, const char *unit, struct split *sp, const char **why,
			 char *err, size_t errlen)
{
	for (int i = 0; rollup_cols[i]; i++) {
		int h = q_has_column(c, "rollup_hourly_v", rollup_cols[i], err, errlen);
		if (h < 0)
			return -1;
		if (!h) {
			*why = i == 0 ? "rollup_hourly_v does not exist (migration 0009)"
				      : "rollup_hourly_v lacks a column this program reads";
			return 0;
		}
	}
	struct qsql q;
	char *v = NULL;
	qsql_init(&q);
	qsql_text(&q, "SELECT to_regprocedure('cdrflow_period_parts(timestamptz, timestamptz, text)') IS NOT NULL");
	int rc = qdb_value(c, &q, &v, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	int has_cut = v && !strcmp(v, "t");
	free(v);
	v = NULL;
	qsql_init(&q);
	if (has_cut) {
		qsql_text(&q, "SELECT p.part, p.lo, p.hi FROM cdrflow_period_parts(");
		qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz, ");
		qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz, ");
		qsql_param(&q, unit);
		qsql_text(&q, "::text) p ORDER BY 1, 2");
		PGresult *r = NULL;
		rc = qdb_exec(c, &q, &r, err, errlen);
		qsql_release(&q);
		if (rc < 0)
			return -1;
		for (int i = 0; i < PQntuples(r); i++) {
			const char *part = PQgetvalue(r, i, 0);
			split_add(sp, !strcmp(part, "r") ? PART_HOURS : !strcmp(part, "q") ? PART_QUARTERS : PART_LEGS,
				  PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		}
		PQclear(r);
		return 1;
	}
	/* a schema before 0059: the rollup alone, when the period is whole
	 * UTC hours and the zone's offset (now) whole hours */
	qsql_text(&q, "SELECT date_trunc('hour', ");
	size_t pf = qsql_param(&q, o->from_ts);
	qsql_text(&q, "::timestamptz, 'UTC') = ");
	qsql_ref(&q, pf);
	qsql_text(&q, "::timestamptz AND date_trunc('hour', ");
	size_t pt = qsql_param(&q, o->to_ts);
	qsql_text(&q, "::timestamptz, 'UTC') = ");
	qsql_ref(&q, pt);
	qsql_text(&q, "::timestamptz AND to_char(now(), 'TZM') = '00'");
	rc = qdb_value(c, &q, &v, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	rc = v && !strcmp(v, "t");
	free(v);
	if (!rc) {
		*why = "the period or the zone's offset is not on whole hours (and the schema has no cdrflow_period_parts, "
		       "migration 0059)";
		return 0;
	}
	split_add(sp, 0, o->from_ts, o->to_ts);
	return 1;
}

/* The column list every source branch yields, in this order. */
#define ROW_COLS                                                                                                  \
	"t, tenant, country, trunk, attempts, answered_attempts, attempt_billsec, legs, answered_legs, billsec,"   \
	" sell_cost, buy_cost, rated, calls, answered_calls"

/* The figures, from the summed contributions (docs/metrics.md), over the
 * rows of alias v (the legs and calls, one row each) or s (sums already:
 * the rollups, below). */
#define SELECT_METRICS(a)                                                                                          \
	", sum(" a ".attempts)::bigint AS attempts, sum(" a ".answered_attempts)::bigint AS answered_attempts,"       \
	" metric_pct(metric_asr(sum(" a ".answered_attempts), sum(" a ".attempts))) AS asr_pct,"                   \
	" metric_seconds(metric_acd(sum(" a ".attempt_billsec), sum(" a ".answered_attempts))) AS acd_s,"          \
	" sum(" a ".attempt_billsec)::bigint AS attempt_billsec,"                                                    \
	" metric_money(coalesce(sum(" a ".sell_cost), 0)) AS sell_cost,"                                            \
	" sum(" a ".legs)::bigint AS legs, sum(" a ".answered_legs)::bigint AS answered_legs,"                       \
	" sum(" a ".billsec)::bigint AS billsec,"                                                                    \
	" metric_money(coalesce(sum(" a ".buy_cost), 0)) AS buy_cost,"                                              \
	" metric_money(coalesce(sum(" a ".sell_cost), 0) - coalesce(sum(" a ".buy_cost), 0)) AS margin,"           \
	" sum(" a ".rated)::bigint AS rated_legs,"                                                                   \
	" sum(" a ".calls)::bigint AS calls, sum(" a ".answered_calls)::bigint AS answered_calls,"                   \
	" metric_pct(metric_answer_rate(sum(" a ".answered_calls), sum(" a ".calls))) AS answer_rate_pct"

/* From the rollups, the contributions are summed first per UTC hour (--by
 * hour, day) or per key (tenant, trunk, destination), in a query planned
 * apart (OFFSET 0), and the figures are computed from those sums: on
 * Citus the rollups are colocated and a query over them alone would go
 * down to the shards whole, where metric_money() (it reads the money
 * scale) nests a distributed query and a local hour or day would be the
 * worker's, not --tz's.  Planned apart, the coordinator computes them. */
static const char select_sums[] =
	", sum(v.attempts) AS attempts, sum(v.answered_attempts) AS answered_attempts,"
	" sum(v.attempt_billsec) AS attempt_billsec, sum(v.sell_cost) AS sell_cost, sum(v.legs) AS legs,"
	" sum(v.answered_legs) AS answered_legs, sum(v.billsec) AS billsec, sum(v.buy_cost) AS buy_cost,"
	" sum(v.rated) AS rated, sum(v.calls) AS calls, sum(v.answered_calls) AS answered_calls";

/* The rows of a source over a part of the period, column col:
 * whole      [from, to)                     the legs alone (--source base)
 * rollup     [h0, h1) less the cut hours    the hourly rollups
 * quarters   the cut hours' quarter hours   the quarter-hour rollups
 * rest       the minutes at either end off the quarter-hour grid: one
 *            index range each */
enum part { WHOLE, ROLLUP, QUARTERS, REST };

static void range(struct qsql *q, const char *col, const char *lo, const char *hi)
{
	qsql_text(q, "(");
	qsql_text(q, col);
	qsql_text(q, " >= ");
	qsql_param(q, lo);
	qsql_text(q, "::timestamptz AND ");
	qsql_text(q, col);
	qsql_text(q, " < ");
	qsql_param(q, hi);
	qsql_text(q, "::timestamptz)");
}

static void period(struct qsql *q, const char *col, const struct qopts *o, const struct split *sp, enum part part)
{
	if (part == WHOLE) {
		range(q, col, o->from_ts, o->to_ts);
		return;
	}
	int p = part == ROLLUP ? PART_HOURS : part == QUARTERS ? PART_QUARTERS : PART_LEGS;
	qsql_text(q, "(false");
	for (size_t i = 0; i < sp->n[p]; i++) {
		qsql_text(q, " OR ");
		range(q, col, sp->lo[p][i], sp->hi[p][i]);
	}
	qsql_text(q, ")");
}

/* The rollup rows of rollup_hourly_v (part ROLLUP, column hour) or of
 * rollup_quarter_hour (QUARTERS, column quarter): the same columns.  The
 * rollup is keyed by disposition: its answered legs are the legs of its
 * ANSWERED rows. */
static void rollup_rows(struct qsql *q, const struct qopts *o, const struct split *sp, enum part part)
{
	int quarters = part == QUARTERS;
	qsql_text(q, quarters ? "SELECT r.quarter" : "SELECT r.hour");
	qsql_text(q, ", r.tenant, r.country, r.trunk, r.calls::bigint, r.answered::bigint,"
		     " r.billsec::bigint, r.legs::bigint,"
		     " CASE WHEN r.disposition = 'ANSWERED' THEN r.legs ELSE 0 END::bigint, r.leg_billsec::bigint,"
		     " r.sell_cost::numeric, r.buy_cost::numeric, r.rated::bigint, 0::bigint, 0::bigint FROM ");
	qsql_text(q, quarters ? "rollup_quarter_hour r WHERE " : "rollup_hourly_v r WHERE ");
	period(q, quarters ? "r.quarter" : "r.hour", o, sp, part);
}

static void leg_rows(struct qsql *q, const struct qopts *o, const struct split *sp, enum part part)
{
	qsql_text(q, "SELECT l.calldate, l.tenant, l.country, l.trunk, l.attempt::bigint, l.answered_attempt::bigint,"
		     " l.attempt_billsec::bigint, 1::bigint, l.answered_leg::bigint, l.billsec::bigint,"
		     " l.sell_cost::numeric, l.buy_cost::numeric, l.rated::bigint, 0::bigint, 0::bigint"
		     " FROM rollup_leg_v l WHERE ");
	period(q, "l.calldate", o, sp, part);
}

/* rollup_call_hourly (ROLLUP) or rollup_call_quarter_hour (QUARTERS) */
static void call_rollup_rows(struct qsql *q, const struct qopts *o, const struct split *sp, enum part part)
{
	int quarters = part == QUARTERS;
	qsql_text(q, quarters ? "SELECT c.quarter" : "SELECT c.hour");
	qsql_text(q, ", c.tenant, c.country, c.trunk, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,"
		     " 0::bigint, NULL::numeric, NULL::numeric, 0::bigint, c.calls::bigint, c.answered_calls::bigint FROM ");
	qsql_text(q, quarters ? "rollup_call_quarter_hour c WHERE " : "rollup_call_hourly c WHERE ");
	period(q, quarters ? "c.quarter" : "c.hour", o, sp, part);
}

static void call_rows(struct qsql *q, const struct qopts *o, const struct split *sp, enum part part)
{
	qsql_text(q, "SELECT k.start, k.tenant, k.country, k.trunk, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,"
		     " 0::bigint, NULL::numeric, NULL::numeric, 0::bigint, 1::bigint, k.answered_call::bigint"
		     " FROM metric_call_v k WHERE ");
	period(q, "k.start", o, sp, part);
}

static void key_filters(struct qsql *q, const struct qopts *o)
{
	if (o->tenant) {
		qsql_text(q, " AND v.tenant = ");
		qsql_param(q, o->tenant);
	}
	if (o->trunk) {
		qsql_text(q, " AND v.trunk = ");
		qsql_param(q, o->trunk);
	}
}

/* keys_v[by] with $z the zone, bound once */
static void key_v(struct qsql *q, const char *k, const char *zone)
{
	size_t zp = 0;
	for (const char *z; (z = strstr(k, "$z")); k = z + 2) {
		char *part = xstrndup(k, (size_t)(z - k));
		qsql_text(q, part);
		free(part);
		if (zp)
			qsql_ref(q, zp);
		else
			zp = qsql_param(q, zone);
	}
	qsql_text(q, k);
}

/* 1 if the schema has the dictionary (migration 0016), 0 if not (logged), -1 */
static int has_dictionary(PGconn *c, char *err, size_t errlen)
{
	int h = q_has_column(c, "rollup_leg_v", "attempt_billsec", err, errlen);
	if (h < 0)
		return -1;
	if (!h || (h = q_has_column(c, "metric_call_v", "country", err, errlen)) <= 0) {
		if (h == 0)
			log_error("stats needs the metric dictionary (schema migration 0016): run 'cdrflow-etl migrate'");
		return h;
	}
	return 1;
}

int q_stats(PGconn *c, const struct qopts *o)
{
	char err[1024];
	const char *why = NULL;
	static const char *const bys[] = { "hour", "day", "tenant", "trunk", "destination", NULL };
	int by = -1;
	for (int i = 0; bys[i]; i++)
		if (o->by && !strcmp(o->by, bys[i]))
			by = i;
	if (by < 0) {
		log_error("stats needs --by hour, day, tenant, trunk or destination");
		return EXIT_USAGE;
	}
	int dict = has_dictionary(c, err, sizeof err);
	if (dict < 0) {
		log_error("%s", err);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	if (!dict)
		return EXIT_CONFIG;
	/* the local unit whose boundaries cut an hour of the rollups */
	static const char *const units[] = { "hour", "day", NULL, NULL, NULL };
	struct split sp;
	memset(&sp, 0, sizeof sp);
	int use_rollup;
	if (!strcmp(o->source, "base")) {
		use_rollup = 0;
		why = "--source base";
	} else {
		use_rollup = rollup_usable(c, o, units[by], &sp, &why, err, sizeof err);
		if (use_rollup < 0) {
			log_error("%s", err);
			return pgc_exit_for_value(c, err, EXIT_USAGE);
		}
		if (!use_rollup && !strcmp(o->source, "rollup")) {
			log_error("--source rollup: %s", why);
			return EXIT_CONFIG;
		}
	}
	int call_rollup = 0;
	if (use_rollup && (call_rollup = q_has_column(c, "rollup_call_hourly", "answered_calls", err, sizeof err)) < 0) {
		log_error("%s", err);
		split_release(&sp);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	/* the quarter-hour rollups (0074), both, with rollup_call_hourly:
	 * else their quarter hours are the legs' */
	if (use_rollup && sp.n[PART_QUARTERS]) {
		int has = call_rollup;
		if (has > 0)
			has = q_has_column(c, "rollup_quarter_hour", "sell_n", err, sizeof err);
		if (has > 0)
			has = q_has_column(c, "rollup_call_quarter_hour", "answered_calls", err, sizeof err);
		if (has < 0) {
			log_error("%s", err);
			split_release(&sp);
			return pgc_exit_for_value(c, err, EXIT_USAGE);
		}
		if (!has)
			split_quarters_to_legs(&sp);
	}
	/* the legs (and calls) answer what the rollups do not: the period's
	 * ends off the quarter-hour grid (before 0074: the ends, the cut
	 * hours); all of it without rollup_call_hourly */
	int rest = use_rollup && (sp.n[PART_LEGS] || !call_rollup);
	char source[240];
	if (!use_rollup || (!sp.n[PART_HOURS] && !sp.n[PART_QUARTERS]))
		snprintf(source, sizeof source, "cdr+call");
	else
		snprintf(source, sizeof source, "%s%s%s",
			 call_rollup ? "rollup_hourly_v, rollup_call_hourly" : "rollup_hourly_v",
			 sp.n[PART_QUARTERS] ? " + rollup_quarter_hour, rollup_call_quarter_hour (quarter hours)" : "",
			 sp.n[PART_LEGS] ? " + cdr+call (the hours they do not hold whole)" : "");
	if (o->fmt == QOUT_TABLE && o->header && !o->explain)
		fprintf(o->out, "source: %s  period: %s .. %s  tz: %s\n", source, o->from_ts, o->to_ts, o->tz);
	if (o->verbose) {
		log_info("stats from %s%s%s", source, use_rollup ? "" : ": ", use_rollup ? "" : why);
		static const char *const part_names[] = { "rollups", "legs", "quarter hours" };
		for (int p = 0; use_rollup && p < NPARTS; p++)
			for (size_t i = 0; i < sp.n[p]; i++)
				log_info("  %s [%s, %s)", part_names[p], sp.lo[p][i], sp.hi[p][i]);
	}

	/* the key over alias v (legs: one row each) or s (rollups: the sums
	 * per hour t, or per key t) */
	/* from the legs, an hour or a day is --tz's named in the SQL (the
	 * session's zone, as the server spells it): on Citus the legs and
	 * calls are colocated, the key is computed on the workers, whose
	 * session zone is their own */
	static const char *const keys_v[] = {
		"to_char(date_trunc('hour', v.t, $z) AT TIME ZONE $z, 'YYYY-MM-DD HH24:00')",
		"to_char(date_trunc('day', v.t, $z) AT TIME ZONE $z, 'YYYY-MM-DD')",
		"v.tenant",
		"v.trunk",
		"v.country",
	};
	char *zone = NULL;
	if (by <= 1 && (!use_rollup || rest)) {
		struct qsql zq;
		qsql_init(&zq);
		qsql_text(&zq, "SELECT current_setting('TimeZone')");
		int zrc = qdb_value(c, &zq, &zone, err, sizeof err);
		qsql_release(&zq);
		if (zrc < 0) {
			log_error("%s", err);
			split_release(&sp);
			return pgc_exit_for_value(c, err, EXIT_USAGE);
		}
	}
	static const char *const keys_s[] = {
		"to_char(date_trunc('hour', s.t), 'YYYY-MM-DD HH24:00')",
		"to_char(date_trunc('day', s.t), 'YYYY-MM-DD')",
		"s.t",
		"s.t",
		"s.t",
	};
	static const char *const inner_t[] = { "v.t", "v.t", "v.tenant", "v.trunk", "v.country" };
	struct qsql q;
	qsql_init(&q);
	qsql_text(&q, "SELECT ");
	if (!use_rollup) { /* the legs and calls alone */
		key_v(&q, keys_v[by], zone);
		qsql_text(&q, " AS ");
		qsql_text(&q, bys[by]);
		qsql_text(&q, SELECT_METRICS("v") " FROM (");
		leg_rows(&q, o, &sp, WHOLE);
		qsql_text(&q, " UNION ALL ");
		call_rows(&q, o, &sp, WHOLE);
		qsql_text(&q, ") v (" ROW_COLS ") WHERE true");
		key_filters(&q, o);
		qsql_text(&q, " GROUP BY 1 ORDER BY 1");
	} else {
		/* The sums, per key k, of two parts, each planned apart (OFFSET
		 * 0): the rollups' summed per UTC hour (--by hour, day) or per
		 * key, the local key taken from those sums; and, when there is
		 * any, the legs' and calls' of the rest, keyed by --tz named in
		 * the SQL (as above).  The figures are computed from the sums of
		 * both. */
		qsql_text(&q, "s.k AS ");
		qsql_text(&q, bys[by]);
		qsql_text(&q, SELECT_METRICS("s") " FROM (SELECT ");
		qsql_text(&q, keys_s[by]);
		qsql_text(&q, " AS k, s.attempts, s.answered_attempts, s.attempt_billsec, s.sell_cost, s.legs,"
			      " s.answered_legs, s.billsec, s.buy_cost, s.rated, s.calls, s.answered_calls FROM (SELECT ");
		qsql_text(&q, inner_t[by]);
		qsql_text(&q, " AS t");
		qsql_text(&q, select_sums);
		qsql_text(&q, " FROM (");
		rollup_rows(&q, o, &sp, ROLLUP);
		if (call_rollup) {
			qsql_text(&q, " UNION ALL ");
			call_rollup_rows(&q, o, &sp, ROLLUP);
		}
		if (sp.n[PART_QUARTERS]) {
			qsql_text(&q, " UNION ALL ");
			rollup_rows(&q, o, &sp, QUARTERS);
			qsql_text(&q, " UNION ALL ");
			call_rollup_rows(&q, o, &sp, QUARTERS);
		}
		qsql_text(&q, ") v (" ROW_COLS ") WHERE true");
		key_filters(&q, o);
		qsql_text(&q, " GROUP BY 1 OFFSET 0) s");
		if (rest) {
			qsql_text(&q, " UNION ALL SELECT ");
			key_v(&q, keys_v[by], zone);
			qsql_text(&q, " AS k");
			qsql_text(&q, select_sums);
			qsql_text(&q, " FROM (");
			leg_rows(&q, o, &sp, REST);
			qsql_text(&q, " UNION ALL ");
			if (call_rollup)
				call_rows(&q, o, &sp, REST);
			else
				call_rows(&q, o, &sp, WHOLE);
			qsql_text(&q, ") v (" ROW_COLS ") WHERE true");
			key_filters(&q, o);
			qsql_text(&q, " GROUP BY 1 OFFSET 0");
		}
		qsql_text(&q, ") s GROUP BY 1 ORDER BY 1");
	}
	free(zone);
	int rc = o->explain ? q_explain(c, &q, o) : q_emit(c, &q, o, NULL);
	qsql_release(&q);
	split_release(&sp);
	return rc;
}

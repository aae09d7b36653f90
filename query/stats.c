/*
 * stats.c - "cdrflow-query stats --by hour|day|tenant|trunk|destination".
 *
 * Every figure is a metric of the dictionary (docs/metrics.md "## The
 * metric dictionary", SQL in sql/0016_metrics.sql): this file only chooses
 * the rows and the key, sums the contributions the SQL defines and applies
 * the SQL's ratio and display functions.  It defines no metric itself.
 *
 * Leg metrics come from rollup_hourly_v (the sums, stored) when it exists,
 * the period is on whole UTC hours and the zone's offset is whole hours;
 * else from rollup_leg_v (one row per leg of a call, with the same
 * contributions).  --source rollup|base forces one.  Call metrics (calls,
 * answered_calls, answer_rate_pct) come from metric_call_v, keyed by the
 * call's start, tenant, trunk and destination country (those of its
 * earliest leg that has one, migration 0016); with the rollup, from its
 * sums per UTC hour, rollup_call_hourly (0046), when the schema has it.
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

/* 1 usable, 0 not (why in *why), -1 query error */
static int rollup_usable(PGconn *c, const struct qopts *o, const char **why, char *err, size_t errlen)
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
	qsql_text(&q, "SELECT date_trunc('hour', ");
	size_t pf = qsql_param(&q, o->from_ts);
	qsql_text(&q, "::timestamptz, 'UTC') = ");
	qsql_ref(&q, pf);
	qsql_text(&q, "::timestamptz AND date_trunc('hour', ");
	size_t pt = qsql_param(&q, o->to_ts);
	qsql_text(&q, "::timestamptz, 'UTC') = ");
	qsql_ref(&q, pt);
	qsql_text(&q, "::timestamptz AND to_char(now(), 'TZM') = '00'");
	int rc = qdb_value(c, &q, &v, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	rc = v && !strcmp(v, "t");
	free(v);
	if (!rc)
		*why = "the period or the zone's offset is not on whole hours";
	return rc;
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

static void period(struct qsql *q, const char *col, const struct qopts *o)
{
	qsql_text(q, col);
	qsql_text(q, " >= ");
	qsql_param(q, o->from_ts);
	qsql_text(q, "::timestamptz AND ");
	qsql_text(q, col);
	qsql_text(q, " < ");
	qsql_param(q, o->to_ts);
	qsql_text(q, "::timestamptz");
}

static void rollup_rows(struct qsql *q, const struct qopts *o)
{
	/* the rollup is keyed by disposition: its answered legs are the legs
	 * of its ANSWERED rows */
	qsql_text(q, "SELECT r.hour, r.tenant, r.country, r.trunk, r.calls::bigint, r.answered::bigint,"
		     " r.billsec::bigint, r.legs::bigint,"
		     " CASE WHEN r.disposition = 'ANSWERED' THEN r.legs ELSE 0 END::bigint, r.leg_billsec::bigint,"
		     " r.sell_cost::numeric, r.buy_cost::numeric, r.rated::bigint, 0::bigint, 0::bigint"
		     " FROM rollup_hourly_v r WHERE ");
	period(q, "r.hour", o);
}

static void leg_rows(struct qsql *q, const struct qopts *o)
{
	qsql_text(q, "SELECT l.calldate, l.tenant, l.country, l.trunk, l.attempt::bigint, l.answered_attempt::bigint,"
		     " l.attempt_billsec::bigint, 1::bigint, l.answered_leg::bigint, l.billsec::bigint,"
		     " l.sell_cost::numeric, l.buy_cost::numeric, l.rated::bigint, 0::bigint, 0::bigint"
		     " FROM rollup_leg_v l WHERE ");
	period(q, "l.calldate", o);
}

static void call_rollup_rows(struct qsql *q, const struct qopts *o)
{
	qsql_text(q, "SELECT c.hour, c.tenant, c.country, c.trunk, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,"
		     " 0::bigint, NULL::numeric, NULL::numeric, 0::bigint, c.calls::bigint, c.answered_calls::bigint"
		     " FROM rollup_call_hourly c WHERE ");
	period(q, "c.hour", o);
}

static void call_rows(struct qsql *q, const struct qopts *o)
{
	qsql_text(q, "SELECT k.start, k.tenant, k.country, k.trunk, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,"
		     " 0::bigint, NULL::numeric, NULL::numeric, 0::bigint, 1::bigint, k.answered_call::bigint"
		     " FROM metric_call_v k WHERE ");
	period(q, "k.start", o);
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
	int use_rollup;
	if (!strcmp(o->source, "base")) {
		use_rollup = 0;
		why = "--source base";
	} else {
		use_rollup = rollup_usable(c, o, &why, err, sizeof err);
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
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	const char *source = call_rollup ? "rollup_hourly_v, rollup_call_hourly" : use_rollup ? "rollup_hourly_v" : "cdr+call";
	if (o->fmt == QOUT_TABLE && o->header && !o->explain)
		fprintf(o->out, "source: %s  period: %s .. %s  tz: %s\n", source, o->from_ts, o->to_ts, o->tz);
	if (o->verbose)
		log_info("stats from %s%s%s", source, use_rollup ? "" : ": ", use_rollup ? "" : why);

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
	if (!use_rollup && by <= 1) {
		struct qsql zq;
		qsql_init(&zq);
		qsql_text(&zq, "SELECT current_setting('TimeZone')");
		int zrc = qdb_value(c, &zq, &zone, err, sizeof err);
		qsql_release(&zq);
		if (zrc < 0) {
			log_error("%s", err);
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
	if (zone) { /* keys_v[by] with $z the zone, bound once */
		const char *k = keys_v[by];
		size_t zp = 0;
		for (const char *z; (z = strstr(k, "$z")); k = z + 2) {
			char *part = xstrndup(k, (size_t)(z - k));
			qsql_text(&q, part);
			free(part);
			if (zp)
				qsql_ref(&q, zp);
			else
				zp = qsql_param(&q, zone);
		}
		qsql_text(&q, k);
		free(zone);
	} else {
		qsql_text(&q, use_rollup ? keys_s[by] : keys_v[by]);
	}
	qsql_text(&q, " AS ");
	qsql_text(&q, bys[by]);
	if (use_rollup) {
		qsql_text(&q, SELECT_METRICS("s") " FROM (SELECT ");
		qsql_text(&q, inner_t[by]);
		qsql_text(&q, " AS t");
		qsql_text(&q, select_sums);
		qsql_text(&q, " FROM (");
		rollup_rows(&q, o);
	} else {
		qsql_text(&q, SELECT_METRICS("v") " FROM (");
		leg_rows(&q, o);
	}
	qsql_text(&q, " UNION ALL ");
	if (call_rollup)
		call_rollup_rows(&q, o);
	else
		call_rows(&q, o);
	qsql_text(&q, ") v (" ROW_COLS ") WHERE true");
	if (o->tenant) {
		qsql_text(&q, " AND v.tenant = ");
		qsql_param(&q, o->tenant);
	}
	if (o->trunk) {
		qsql_text(&q, " AND v.trunk = ");
		qsql_param(&q, o->trunk);
	}
	qsql_text(&q, use_rollup ? " GROUP BY 1 OFFSET 0) s GROUP BY 1 ORDER BY 1" : " GROUP BY 1 ORDER BY 1");
	int rc = o->explain ? q_explain(c, &q, o) : q_emit(c, &q, o, NULL);
	qsql_release(&q);
	return rc;
}

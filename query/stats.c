/*
 * stats.c - "cdrflow-query stats --by hour|day|tenant|trunk|destination".
 *
 * The metrics are those of the rollups (docs/metrics.md "## Analyst CLI"):
 * calls = dial legs, answered = dial legs ANSWERED, ASR % = 100 answered /
 * calls, ACD = billsec / answered, billsec = billsec of answered dial legs,
 * sell cost = sum of cdr.sell_cost over every leg, in currency units.
 *
 * Source: rollup_hourly_v (migration 0009) when it exists with the columns
 * used here, the period is on whole UTC hours and the zone's offset is whole
 * hours; else the legs themselves (cdr rows that have a call_id; the
 * call's direction is looked up only for legs without one), with the same
 * definitions.  --source rollup|base forces one.
 */
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "qdb.h"
#include "query.h"
#include "xalloc.h"

static const char *const rollup_cols[] = { "hour", "tenant", "country", "trunk", "calls", "answered", "billsec",
					   "sell_cost", NULL };

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

/* the trunk of a leg, as 0009's cdrflow_trunk() (inline: works without it) */
#define PEER(col) \
	"CASE WHEN " col " <> '' AND " col " NOT LIKE 'Local/%' THEN " \
	"regexp_replace(regexp_replace(" col ", '<[^>]*>$', ''), '-[0-9a-fA-F]+(;[0-9]+)?$', '') END"

/* E.164 country codes of two digits (ITU-T zones); 1 and 7 are one digit,
 * every other code three: the fallback when there is no country table */
#define CC2 "'{20,27,30,31,32,33,34,36,39,40,41,43,44,45,46,47,48,49,51,52,53,54,55,56,57,58," \
	    "60,61,62,63,64,65,66,81,82,84,86,90,91,92,93,94,95,98}'::text[]"

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
	int use_rollup;
	if (!strcmp(o->source, "base")) {
		use_rollup = 0;
		why = "--source base";
	} else {
		use_rollup = rollup_usable(c, o, &why, err, sizeof err);
		if (use_rollup < 0) {
			log_error("%s", err);
			return qdb_failure_exit(c, err);
		}
		if (!use_rollup && !strcmp(o->source, "rollup")) {
			log_error("--source rollup: %s", why);
			return EXIT_CONFIG;
		}
	}
	if (!use_rollup) {
		static const char *const need[] = { "direction", "dst_e164", "sell_cost", NULL };
		for (int i = 0; need[i]; i++) {
			int h = q_has_column(c, "cdr", need[i], err, sizeof err);
			if (h < 0) {
				log_error("%s", err);
				return qdb_failure_exit(c, err);
			}
			if (!h) {
				log_error("stats needs cdr.%s (schema migration 0007): run 'cdrflow-etl migrate'", need[i]);
				return EXIT_CONFIG;
			}
		}
	}
	int has_cc = 0;
	if (!use_rollup && by == 4) {
		has_cc = q_has_column(c, "rollup_country_code", "prefix", err, sizeof err);
		if (has_cc < 0) {
			log_error("%s", err);
			return qdb_failure_exit(c, err);
		}
	}
	const char *source = use_rollup ? "rollup_hourly_v" : "cdr+call";
	if (o->fmt == QOUT_TABLE && o->header && !o->explain)
		fprintf(o->out, "source: %s  period: %s .. %s  tz: %s\n", source, o->from_ts, o->to_ts, o->tz);
	if (o->verbose)
		log_info("stats from %s%s%s", source, use_rollup ? "" : ": ", use_rollup ? "" : why);

	static const char *const keys[] = {
		"to_char(date_trunc('hour', v.t), 'YYYY-MM-DD HH24:00') AS hour",
		"to_char(date_trunc('day', v.t), 'YYYY-MM-DD') AS day",
		"v.tenant AS tenant",
		"v.trunk AS trunk",
		"v.country AS destination",
	};
	struct qsql q;
	qsql_init(&q);
	qsql_text(&q, "SELECT ");
	qsql_text(&q, keys[by]);
	qsql_text(&q, ", sum(v.calls)::bigint AS calls, sum(v.answered)::bigint AS answered,"
		      " round(100.0 * sum(v.answered) / nullif(sum(v.calls), 0), 1) AS asr_pct,"
		      " round(sum(v.billsec)::numeric / nullif(sum(v.answered), 0), 1) AS acd_s,"
		      " sum(v.billsec)::bigint AS billsec,"
		      " round(coalesce(sum(v.sell_cost), 0) / 1000000.0, 4) AS sell_cost FROM (");
	if (use_rollup) {
		qsql_text(&q, "SELECT r.hour AS t, r.tenant, r.country, r.trunk, r.calls, r.answered, r.billsec, r.sell_cost"
			      " FROM rollup_hourly_v r WHERE r.hour >= ");
		qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz AND r.hour < ");
		qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz");
	} else {
		qsql_text(&q, "SELECT l.calldate AS t, coalesce(l.tenant, '') AS tenant, ");
		if (by != 4)
			qsql_text(&q, "''");
		else if (has_cc)
			qsql_text(&q, "coalesce((SELECT cc.iso FROM rollup_country_code cc WHERE cc.prefix = ANY (ARRAY("
				      "SELECT left(substr(l.dst_e164, 2), n) FROM generate_series(1, 7) n))"
				      " ORDER BY length(cc.prefix) DESC LIMIT 1), '')");
		else
			qsql_text(&q, "CASE WHEN l.dst_e164 IS NULL THEN ''"
				      " WHEN substr(l.dst_e164, 2, 1) IN ('1', '7') THEN left(l.dst_e164, 2)"
				      " WHEN substr(l.dst_e164, 2, 2) = ANY (" CC2 ") THEN left(l.dst_e164, 3)"
				      " ELSE left(l.dst_e164, 4) END");
		qsql_text(&q, " AS country,"
			      " coalesce(CASE WHEN x.dir = 'inbound' THEN coalesce(x.a, x.b) ELSE coalesce(x.b, x.a) END, '')"
			      " AS trunk,"
			      " x.dial::int AS calls, (x.dial AND l.disposition = 'ANSWERED')::int AS answered,"
			      " CASE WHEN x.dial AND l.disposition = 'ANSWERED' THEN l.billsec ELSE 0 END AS billsec,"
			      " l.sell_cost"
			      " FROM cdr l"
			      " CROSS JOIN LATERAL (SELECT"
			      " coalesce(l.dstchannel, '') <> '' OR coalesce(l.lastapp, '') IN ('Dial', 'Queue') AS dial,"
			      /* the call's direction only when the leg has none (an index probe) */
			      " coalesce(nullif(nullif(l.direction, ''), 'unknown'), (SELECT nullif(k.direction, '') FROM call k"
			      " WHERE k.call_id = l.call_id AND k.node = l.node LIMIT 1), 'unknown') AS dir,"
			      " " PEER("l.channel") " AS a, " PEER("l.dstchannel") " AS b) x"
			      " WHERE l.call_id IS NOT NULL AND l.calldate >= ");
		qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz AND l.calldate < ");
		qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz");
	}
	qsql_text(&q, ") v WHERE true");
	if (o->tenant) {
		qsql_text(&q, " AND v.tenant = ");
		qsql_param(&q, o->tenant);
	}
	if (o->trunk) {
		qsql_text(&q, " AND v.trunk = ");
		qsql_param(&q, o->trunk);
	}
	qsql_text(&q, " GROUP BY 1 ORDER BY 1");
	int rc = o->explain ? q_explain(c, &q, o) : q_emit(c, &q, o, NULL);
	qsql_release(&q);
	return rc;
}

/*
 * retention.c - drop expired monthly partitions, whole, in one transaction.
 * See retention.h for the rule; docs/metrics.md "Retention and access".
 */
#include "retention.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Shortest span in days of n consecutive months, n = 0..12 (a run that
 * starts with February of a non-leap year). */
static const int min_days[13] = { 0, 28, 59, 89, 120, 150, 181, 212, 242, 273, 303, 334, 365 };

static int months_for_days(long days)
{
	/* whole years first: any 12 consecutive months span at least 365 days */
	long m = (days / 365) * 12, rest = days % 365;
	int k = 0;
	while (min_days[k] < rest)
		k++;
	return (int)(m + k);
}

int retention_parse_keep(const char *s, int *months)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (errno || v < 1)
		return -1;
	long m;
	if (!strcmp(end, "mo"))
		m = v;
	else if (!strcmp(end, "y"))
		m = v <= RETENTION_MAX_MONTHS / 12 ? v * 12 : RETENTION_MAX_MONTHS + 1;
	else if (!strcmp(end, "d"))
		m = v <= (long)RETENTION_MAX_MONTHS * 31 ? months_for_days(v) : RETENTION_MAX_MONTHS + 1;
	else
		return -1;
	if (m < 1 || m > RETENTION_MAX_MONTHS)
		return -1;
	*months = (int)m;
	return 0;
}

static void set_err(PGconn *c, PGresult *r, char *err, size_t errlen)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c);
	snprintf(err, errlen, "%s%s%s", state ? state : "", state ? ": " : "", msg);
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = p[1] ? ' ' : '\0';
}

/* Run sql with up to one text parameter; the result (tuples or command),
 * or NULL with err filled. */
static PGresult *run(PGconn *c, const char *sql, const char *param, char *err, size_t errlen)
{
	const char *params[1] = { param };
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		set_err(c, r, err, errlen);
		PQclear(r);
		return NULL;
	}
	return r;
}

static int run_cmd(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = run(c, sql, NULL, err, errlen);
	PQclear(r);
	return r ? 0 : -1;
}

/* The expired partitions, oldest first: table, partition, month, size,
 * parent and partition as quoted identifiers. */
static const char expired_sql[] =
	"SELECT t.tbl, c.relname, to_char(m.month, 'YYYY-MM'), pg_size_pretty(pg_total_relation_size(c.oid)), "
	"       to_regclass(t.tbl)::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
	"FROM retention_table t "
	"JOIN pg_inherits i ON i.inhparent = to_regclass(t.tbl) "
	"JOIN pg_class c ON c.oid = i.inhrelid "
	"JOIN pg_namespace n ON n.oid = c.relnamespace "
	"CROSS JOIN LATERAL (SELECT CASE WHEN left(c.relname, length(t.tbl) + 1) = t.tbl || '_' "
	"       AND substr(c.relname, length(t.tbl) + 2) ~ '^y[0-9]{4}m(0[1-9]|1[0-2])$' "
	"       THEN make_timestamptz(substr(c.relname, length(t.tbl) + 3, 4)::int, "
	"                             substr(c.relname, length(t.tbl) + 8, 2)::int, 1, 0, 0, 0, 'UTC') END AS month) m "
	"WHERE m.month IS NOT NULL AND m.month + interval '1 month' <= $1::timestamptz "
	"ORDER BY m.month, t.tbl, c.relname";

/* Per retention table with a DEFAULT partition: the query counting its
 * rows older than the boundary. */
static const char defaults_sql[] =
	"SELECT d.oid::regclass::text, format('SELECT count(*) FROM %s WHERE %I < %L', d.oid::regclass, "
	"       t.time_column, $1::timestamptz) "
	"FROM retention_table t "
	"JOIN pg_partitioned_table p ON p.partrelid = to_regclass(t.tbl) "
	"JOIN pg_class d ON d.oid = p.partdefid "
	"ORDER BY t.tbl";

static int report_defaults(PGconn *c, const char *boundary, const char *day, FILE *out, char *err, size_t errlen)
{
	PGresult *d = run(c, defaults_sql, boundary, err, errlen);
	if (!d)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(d) && rc == 0; i++) {
		PGresult *n = run(c, PQgetvalue(d, i, 1), NULL, err, errlen);
		if (!n) {
			rc = -1;
			break;
		}
		const char *count = PQntuples(n) == 1 ? PQgetvalue(n, 0, 0) : "0";
		if (strcmp(count, "0") != 0)
			fprintf(out,
				"retention: %s holds %s rows before %s: not deleted (retention never DELETEs); "
				"move them into monthly partitions and run retention again "
				"(docs/metrics.md, \"Retention and access\")\n",
				PQgetvalue(d, i, 0), count, day);
		PQclear(n);
	}
	PQclear(d);
	return rc;
}

int retention_run(PGconn *c, int keep_months, int dry_run, FILE *out, char *err, size_t errlen)
{
	if (keep_months < 1 || keep_months > RETENTION_MAX_MONTHS) {
		snprintf(err, errlen, "retention: the kept window must be 1 to %d months, not %d", RETENTION_MAX_MONTHS,
			 keep_months);
		return -2;
	}
	if (run_cmd(c, "BEGIN", err, errlen) < 0)
		return -1;
	int rc = -1;
	PGresult *b = NULL, *x = NULL;
	char keep[16];
	snprintf(keep, sizeof keep, "%d", keep_months);
	if (run_cmd(c, "SET LOCAL TimeZone = 'UTC'", err, errlen) < 0 ||
	    run_cmd(c, "SET LOCAL lock_timeout = '10s'", err, errlen) < 0)
		goto out;
	b = run(c, "SELECT to_regclass('retention_table') IS NOT NULL, "
		   "date_trunc('month', now() - make_interval(months => $1::int))::text, "
		   "to_char(date_trunc('month', now() - make_interval(months => $1::int)), 'YYYY-MM-DD')",
		keep, err, errlen);
	if (!b)
		goto out;
	if (strcmp(PQgetvalue(b, 0, 0), "t") != 0) {
		snprintf(err, errlen, "retention: the warehouse has no retention_table (run cdrflow-etl migrate)");
		goto out;
	}
	const char *boundary = PQgetvalue(b, 0, 1), *day = PQgetvalue(b, 0, 2);
	fprintf(out, "retention: keep %d month%s: %s monthly partitions before %s (UTC)\n", keep_months,
		keep_months == 1 ? "" : "s", dry_run ? "would drop" : "dropping", day);
	x = run(c, expired_sql, boundary, err, errlen);
	if (!x)
		goto out;
	int n = PQntuples(x);
	for (int i = 0; i < n; i++) {
		fprintf(out, "%s %s (%s, %s, %s)\n", dry_run ? "would drop" : "drop", PQgetvalue(x, i, 1),
			PQgetvalue(x, i, 0), PQgetvalue(x, i, 2), PQgetvalue(x, i, 3));
		if (dry_run)
			continue;
		const char *parent = PQgetvalue(x, i, 4), *part = PQgetvalue(x, i, 5);
		char *sql = xasprintf("ALTER TABLE %s DETACH PARTITION %s", parent, part);
		int bad = run_cmd(c, sql, err, errlen);
		free(sql);
		if (!bad) {
			sql = xasprintf("DROP TABLE %s", part);
			bad = run_cmd(c, sql, err, errlen);
			free(sql);
		}
		if (bad)
			goto out;
	}
	if (report_defaults(c, boundary, day, out, err, errlen) < 0)
		goto out;
	fprintf(out, "retention: %s %d partition%s\n", dry_run ? "would drop" : "dropped", n, n == 1 ? "" : "s");
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(err, errlen, "retention: cannot write the report: %s", strerror(errno));
		goto out;
	}
	if (dry_run) {
		rc = run_cmd(c, "ROLLBACK", err, errlen);
		PQclear(b);
		PQclear(x);
		return rc;
	}
	rc = run_cmd(c, "COMMIT", err, errlen);
	PQclear(b);
	PQclear(x);
	return rc;
out:
	PQclear(b);
	PQclear(x);
	{
		char ignored[256];
		run_cmd(c, "ROLLBACK", ignored, sizeof ignored);
	}
	return -1;
}

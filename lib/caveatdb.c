/*
 * caveatdb.c - the input caveats of a period.
 */
#include "caveatdb.h"

#include <string.h>

int caveats_print(PGconn *c, const char *from, const char *to, FILE *out, const char *prefix, size_t *n, char *err,
		  size_t errlen)
{
	*n = 0;
	PGresult *r = PQexec(c, "SELECT to_regclass('input_caveat') IS NOT NULL");
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(err, errlen, "input_caveat: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	int exists = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	if (!exists)
		return 0;
	const char *v[2] = { from ? from : "-infinity", to ? to : "infinity" };
	/* a period without caveats (the usual case) is told by one plain
	 * probe of input_caveat's (period_start, period_end) index, the
	 * function's own filter: input_caveats() is PL/pgSQL (0022, for
	 * Citus), and its first call in a session loads and compiles it
	 * (~5 ms, a tenth of a cdrflow-query run) to return nothing */
	r = PQexecParams(c,
			 "SELECT EXISTS (SELECT 1 FROM input_caveat c "
			 "WHERE c.period_start < $2::timestamptz AND c.period_end >= $1::timestamptz)",
			 2, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(err, errlen, "input_caveat: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	int any = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	if (!any)
		return 0;
	r = PQexecParams(c,
			 "SELECT node, to_char(period_start, 'YYYY-MM-DD HH24:MI:SS TZ'), "
			 "to_char(period_end, 'YYYY-MM-DD HH24:MI:SS TZ'), caveat, restore, affects_rows "
			 "FROM input_caveats($1::timestamptz, $2::timestamptz)",
			 2, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "input_caveats: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		fprintf(out, "%snode %s, %s .. %s: %s%s (restore: %s)\n", prefix, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
			PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
			strcmp(PQgetvalue(r, i, 5), "t") ? " [analytics only]" : " [CDR rows affected]", PQgetvalue(r, i, 4));
		(*n)++;
	}
	PQclear(r);
	return 0;
}

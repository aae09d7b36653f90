#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "pgconn.h"

int etl_lock_take(struct etl_lock *l, PGconn *main, const char *name, char *err, size_t errlen)
{
	char app[64];
	snprintf(app, sizeof app, "cdrflow-etl %s lock", name);
	if (l->c && PQstatus(l->c) != CONNECTION_OK) {
		PQfinish(l->c);
		l->c = NULL;
	}
	if (!l->c && !(l->c = pgc_connect_like(main, app, err, errlen)))
		return EXIT_UNAVAILABLE;
	l->held = 0;
	const char *v[1] = { name };
	if (pgc_exec(l->c, "BEGIN", err, errlen) < 0 || pgc_default_lock_timeout(l->c, "15s", err, errlen) < 0)
		goto fail;
	PGresult *r = PQexecParams(l->c, "SELECT name FROM etl_lock WHERE name = $1 FOR UPDATE", 1, NULL, v, NULL, NULL, 0);
	int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (!ok) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		if (state && !strcmp(state, "55P03")) {
			/* who: the holder's application_name says it (visible to
			 * the same role and to pg_read_all_stats) */
			char *who = NULL, ignored[128];
			char q[512];
			char *lit = PQescapeLiteral(main, app, strlen(app));
			if (lit) {
				snprintf(q, sizeof q, "SELECT string_agg(format('pid %%s, user %%s, since %%s', pid, usename, "
					 "date_trunc('second', xact_start)), '; ') FROM pg_stat_activity WHERE application_name "
					 "= %s AND pid <> pg_backend_pid()", lit);
				PQfreemem(lit);
				pgc_value(main, q, &who, ignored, sizeof ignored);
			}
			snprintf(err, errlen, "another cdrflow-etl holds the %s lock (row '%s' of etl_lock%s%s) and did not "
				 "release it within lock_timeout; try again later", name, name, who ? ": " : "",
				 who ? who : "");
			free(who);
			PQclear(r);
			pgc_exec(l->c, "ROLLBACK", ignored, sizeof ignored);
			return EXIT_TEMPFAIL;
		}
		if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
			snprintf(err, errlen, "XX000: etl_lock has no row '%s' (run 'cdrflow-etl migrate')", name);
		else
			snprintf(err, errlen, "%s: %s", state ? state : "08000", PQerrorMessage(l->c));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	l->held = 1;
	return EXIT_OK;
fail:;
	int rc = pgc_error_exit(l->c, err);
	char ignored[128];
	if (PQstatus(l->c) == CONNECTION_OK)
		pgc_exec(l->c, "ROLLBACK", ignored, sizeof ignored);
	return rc;
}

void etl_lock_release(struct etl_lock *l)
{
	char ignored[128];
	if (l->c && l->held && PQstatus(l->c) == CONNECTION_OK)
		pgc_exec(l->c, "COMMIT", ignored, sizeof ignored);
	l->held = 0;
}

void etl_lock_close(struct etl_lock *l)
{
	etl_lock_release(l);
	if (l->c)
		PQfinish(l->c);
	l->c = NULL;
}

#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

PGconn *pg_connect(const char *conninfo, const char *application, char *err, size_t errlen)
{
	return pgc_connect(conninfo, application, NULL, err, errlen);
}

PGconn *pg_connect_like(PGconn *c, const char *application, char *err, size_t errlen)
{
	return pgc_connect_like(c, application, err, errlen);
}

int pg_default_lock_timeout(PGconn *c, const char *dflt, char *err, size_t errlen)
{
	char *v = NULL;
	if (pg_query_value(c, "SELECT current_setting('lock_timeout')", &v, err, errlen) < 0)
		return -1;
	int unset = !v || !strcmp(v, "0");
	free(v);
	if (!unset)
		return 0; /* chosen by the user (PGOPTIONS, ALTER ROLE ... SET) */
	char sql[96];
	snprintf(sql, sizeof sql, "SET lock_timeout = '%s'", dflt);
	return pg_exec(c, sql, err, errlen);
}

int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pgc_result_error(r, c, err, errlen);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int pg_query_value(PGconn *c, const char *sql, char **out, char *err, size_t errlen)
{
	*out = NULL;
	PGresult *r = PQexec(c, sql);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_result_error(r, c, err, errlen);
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int pg_failure_exit(PGconn *c, const char *sqlstate)
{
	if (!c || PQstatus(c) != CONNECTION_OK)
		return EXIT_UNAVAILABLE;
	/* class 08 connection exception, 57P0x shutdown/cannot connect now, 53 resources */
	if (sqlstate && (!strncmp(sqlstate, "08", 2) || !strncmp(sqlstate, "57P", 3) || !strncmp(sqlstate, "53", 2)))
		return EXIT_UNAVAILABLE;
	/* 55P03 lock_not_available: a lock wait passed lock_timeout */
	if (sqlstate && !strcmp(sqlstate, "55P03"))
		return EXIT_TEMPFAIL;
	return EXIT_SOFTWARE;
}

int pg_error_exit(PGconn *c, const char *err)
{
	char st[6] = "";
	if (err && strlen(err) > 6 && err[5] == ':') {
		memcpy(st, err, 5);
		for (int i = 0; i < 5; i++)
			if (!((st[i] >= '0' && st[i] <= '9') || (st[i] >= 'A' && st[i] <= 'Z')))
				st[0] = '\0';
	}
	return pg_failure_exit(c, st[0] ? st : NULL);
}

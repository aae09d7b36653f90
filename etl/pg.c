#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "xalloc.h"

static void one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
}

/* Server notices ("relation already exists, skipping"...) go to the debug log. */
static void notice(void *arg, const char *msg)
{
	(void)arg;
	char buf[512];
	snprintf(buf, sizeof buf, "%s", msg);
	one_line(buf);
	log_debug("postgres: %s", buf);
}

PGconn *pg_connect(const char *conninfo, const char *application, char *err, size_t errlen)
{
	const char *keys[] = { "dbname", "application_name", "fallback_application_name", NULL };
	const char *vals[] = { conninfo && *conninfo ? conninfo : NULL, application, application, NULL };
	/* expand_dbname=1: dbname may hold a whole conninfo string or URI */
	PGconn *c = PQconnectdbParams(vals[0] ? keys : keys + 1, vals[0] ? vals : vals + 1, 1);
	if (!c) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
		one_line(err);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, notice, NULL);
	return c;
}

PGconn *pg_connect_like(PGconn *c, const char *application, char *err, size_t errlen)
{
	PQconninfoOption *opts = PQconninfo(c);
	if (!opts) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	size_t n = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	const char **keys = xcalloc(n + 2, sizeof *keys), **vals = xcalloc(n + 2, sizeof *vals);
	size_t k = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !strcmp(o->keyword, "application_name") || !strcmp(o->keyword, "fallback_application_name"))
			continue;
		keys[k] = o->keyword;
		vals[k++] = o->val;
	}
	keys[k] = "application_name";
	vals[k++] = application;
	PGconn *l = PQconnectdbParams(keys, vals, 0);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	if (!l || PQstatus(l) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", l ? PQerrorMessage(l) : "out of memory");
		one_line(err);
		PQfinish(l);
		return NULL;
	}
	PQsetNoticeProcessor(l, notice, NULL);
	return l;
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

static void result_error(PGresult *r, PGconn *c, char *err, size_t errlen)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
	snprintf(err, errlen, "%s%s%s", state ? state : "", state ? ": " : "", msg && *msg ? msg : PQerrorMessage(c));
	one_line(err);
}

int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		result_error(r, c, err, errlen);
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
		result_error(r, c, err, errlen);
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

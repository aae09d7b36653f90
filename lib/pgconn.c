/*
 * pgconn.c - connecting to PostgreSQL (pgconn.h).
 */
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

void pgc_one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
}

/* Server notices ("relation already exists, skipping"...) go to the debug log. */
static void notice(void *arg, const char *msg)
{
	(void)arg;
	char b[512];
	snprintf(b, sizeof b, "%s", msg);
	pgc_one_line(b);
	log_debug("postgres: %s", b);
}

PGconn *pgc_connect(const char *conninfo, const char *app, int *refused, char *err, size_t errlen)
{
	const char *keys[] = { "dbname", "application_name", "fallback_application_name", NULL };
	const char *vals[] = { conninfo && *conninfo ? conninfo : NULL, app, app, NULL };
	if (refused)
		*refused = 0;
	/* expand_dbname=1: dbname may hold a whole conninfo string or URI */
	PGconn *c = PQconnectdbParams(vals[0] ? keys : keys + 1, vals[0] ? vals : vals + 1, 1);
	if (!c) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(c);
		if (refused)
			*refused = strstr(m, "password authentication failed") || strstr(m, "no password supplied");
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", m);
		pgc_one_line(err);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, notice, NULL);
	return c;
}

void pgc_result_error(const PGresult *r, PGconn *c, char *err, size_t errlen)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c);
	snprintf(err, errlen, "%s%s%s", state ? state : "", state ? ": " : "", msg);
	pgc_one_line(err);
}

PGconn *pgc_connect_like(PGconn *c, const char *application, char *err, size_t errlen)
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
		pgc_one_line(err);
		PQfinish(l);
		return NULL;
	}
	PQsetNoticeProcessor(l, notice, NULL);
	return l;
}

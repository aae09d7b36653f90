/*
 * pgconn.c - connecting to PostgreSQL (pgconn.h).
 */
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "xalloc.h"

void pgc_one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
}

int conninfo_has_password(const char *conninfo)
{
	if (!conninfo || !*conninfo)
		return 0;
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		PQfreemem(perr);
		return 0;
	}
	int has = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val)
			has = 1;
	PQconninfoFree(opts);
	return has;
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

int pgc_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pgc_result_error(r, c, err, errlen);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int pgc_reader_session(PGconn *c, char *err, size_t errlen)
{
	return pgc_exec(c, "SET jit = off", err, errlen);
}

int pgc_exec_params(PGconn *c, const char *sql, int n, const char *const *values, PGresult **out, char *err,
		    size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	*out = NULL;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pgc_result_error(r, c, err, errlen);
		PQclear(r);
		return -1;
	}
	*out = r;
	return 0;
}

int pgc_value(PGconn *c, const char *sql, char **out, char *err, size_t errlen)
{
	PGresult *r;
	*out = NULL;
	if (pgc_exec_params(c, sql, 0, NULL, &r, err, errlen) < 0)
		return -1;
	if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
		*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int pgc_default_lock_timeout(PGconn *c, const char *dflt, char *err, size_t errlen)
{
	char *v = NULL;
	if (pgc_value(c, "SELECT current_setting('lock_timeout')", &v, err, errlen) < 0)
		return -1;
	int unset = !v || !strcmp(v, "0");
	free(v);
	if (!unset)
		return 0; /* chosen by the user (PGOPTIONS, ALTER ROLE ... SET) */
	const char *pv[1] = { dflt };
	PGresult *r;
	if (pgc_exec_params(c, "SELECT set_config('lock_timeout', $1, false)", 1, pv, &r, err, errlen) < 0)
		return -1;
	PQclear(r);
	return 0;
}

static int state_is(const char *state, const char *prefix)
{
	return !strncmp(state, prefix, strlen(prefix));
}

int pgc_state_exit(PGconn *c, const char *state)
{
	if (!c || PQstatus(c) != CONNECTION_OK)
		return EXIT_UNAVAILABLE;
	if (!state || !*state)
		return EXIT_SOFTWARE;
	if (state_is(state, "08") || state_is(state, "57P") || state_is(state, "53"))
		return EXIT_UNAVAILABLE;
	if (!strcmp(state, "57014") || state_is(state, "40") || !strcmp(state, "55P03"))
		return EXIT_TEMPFAIL;
	if (state_is(state, "28") || !strcmp(state, "42501"))
		return EXIT_NOPERM;
	if (!strcmp(state, "42P01") || !strcmp(state, "42703") || !strcmp(state, "42883") || !strcmp(state, "3F000"))
		return EXIT_CONFIG;
	static const char *const data_classes[] = { "22", "23", "21", "25", "0A", "P0", "42", NULL };
	for (const char *const *k = data_classes; *k; k++)
		if (state_is(state, *k))
			return EXIT_DATAERR;
	return EXIT_SOFTWARE;
}

const char *pgc_err_state(const char *err, char st[6])
{
	st[0] = '\0';
	if (!err || strlen(err) < 7 || err[5] != ':')
		return st;
	for (int i = 0; i < 5; i++)
		if (!((err[i] >= '0' && err[i] <= '9') || (err[i] >= 'A' && err[i] <= 'Z')))
			return st;
	memcpy(st, err, 5);
	st[5] = '\0';
	return st;
}

int pgc_error_exit(PGconn *c, const char *err)
{
	char st[6];
	return pgc_state_exit(c, pgc_err_state(err, st));
}

int pgc_exit_for_value(PGconn *c, const char *err, int value_exit)
{
	char st[6];
	int rc = pgc_state_exit(c, pgc_err_state(err, st));
	/* class 22, or a RAISE EXCEPTION of the warehouse's own checks (P0001) */
	return rc == EXIT_DATAERR && (state_is(st, "22") || !strcmp(st, "P0001")) ? value_exit : rc;
}

#include "qdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

void qsql_init(struct qsql *q)
{
	buf_init(&q->sql, 0);
	q->n = q->cap = 0;
	q->params = NULL;
}

void qsql_release(struct qsql *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->params[i]);
	free(q->params);
	buf_release(&q->sql);
	qsql_init(q);
}

void qsql_text(struct qsql *q, const char *sql)
{
	if (buf_puts(&q->sql, sql) < 0)
		abort(); /* no cap: cannot happen */
}

size_t qsql_param(struct qsql *q, const char *value)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 8;
		q->params = xrealloc(q->params, q->cap * sizeof *q->params);
	}
	q->params[q->n++] = value ? xstrdup(value) : NULL;
	qsql_ref(q, q->n);
	return q->n;
}

void qsql_ref(struct qsql *q, size_t n)
{
	if (buf_printf(&q->sql, "$%zu", n) < 0)
		abort();
}

static int send_query(PGconn *c, const struct qsql *q, char *err, size_t errlen)
{
	log_debug("sql: %s", q->sql.data);
	for (size_t i = 0; i < q->n; i++)
		log_debug("  $%zu = %s", i + 1, q->params[i] ? q->params[i] : "NULL");
	if (!PQsendQueryParams(c, q->sql.data, (int)q->n, NULL, (const char *const *)q->params, NULL, NULL, 0)) {
		pgc_result_error(NULL, c, err, errlen);
		return -1;
	}
	return 0;
}

int qdb_stream(PGconn *c, const struct qsql *q, const struct qdb_sink *sink, char *err, size_t errlen)
{
	if (send_query(c, q, err, errlen) < 0)
		return -1;
	if (!PQsetSingleRowMode(c))
		log_warn("single-row mode refused: the result is read whole");
	int rc = 0, begun = 0;
	PGresult *r;
	while ((r = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(r);
		if (rc == 0 && (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK)) {
			if (!begun) {
				begun = 1;
				rc = sink->begin ? sink->begin(sink->arg, r) : 0;
			}
			for (int i = 0; rc == 0 && i < PQntuples(r); i++)
				rc = sink->row(sink->arg, r, i);
		} else if (rc == 0 && st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			pgc_result_error(r, c, err, errlen);
			rc = -1;
		}
		PQclear(r);
		if (rc != 0 && PQisBusy(c)) {
			/* the sink failed (stdout closed): stop the query, drain */
			PGcancel *cn = PQgetCancel(c);
			char e[128];
			if (cn) {
				PQcancel(cn, e, sizeof e);
				PQfreeCancel(cn);
			}
		}
	}
	return rc;
}

int qdb_exec(PGconn *c, const struct qsql *q, PGresult **out, char *err, size_t errlen)
{
	log_debug("sql: %s", q->sql.data);
	return pgc_exec_params(c, q->sql.data, (int)q->n, (const char *const *)q->params, out, err, errlen);
}

int qdb_value(PGconn *c, const struct qsql *q, char **out, char *err, size_t errlen)
{
	PGresult *r;
	*out = NULL;
	if (qdb_exec(c, q, &r, err, errlen) < 0)
		return -1;
	if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
		*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/*
 * qdb.h - the PostgreSQL side of cdrflow-query: a small SQL builder whose
 * values always travel as bind parameters ($1, $2, ...; never pasted into
 * the SQL text), and a streaming executor (libpq single-row mode) that hands
 * rows to a callback one at a time, so a result of millions of rows is
 * never held in memory.
 */
#ifndef CDRFLOW_QDB_H
#define CDRFLOW_QDB_H
#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"

struct qsql {
	struct buf sql;
	size_t n;
	size_t cap;
	char **params; /* owned; NULL = SQL NULL */
};

void qsql_init(struct qsql *q);
void qsql_release(struct qsql *q);
/* Append SQL text (constants from the program, never user input). */
void qsql_text(struct qsql *q, const char *sql);
/* Append "$n" bound to a copy of value (NULL = SQL NULL); returns n. */
size_t qsql_param(struct qsql *q, const char *value);
/* Append "$n" referring to an earlier parameter again. */
void qsql_ref(struct qsql *q, size_t n);

struct qdb_sink {
	/* called once, before the first row (also when there are none) */
	int (*begin)(void *arg, const PGresult *r);
	/* called for every row: row i of r */
	int (*row)(void *arg, const PGresult *r, int i);
	void *arg;
};

/* Run q, streaming rows into sink.  0; -1 with err ("SQLSTATE: message")
 * for a server error, or the sink's own negative return (err untouched). */
int qdb_stream(PGconn *c, const struct qsql *q, const struct qdb_sink *sink, char *err, size_t errlen);
/* Run q and return its whole (small) result in *out (PQclear it). */
int qdb_exec(PGconn *c, const struct qsql *q, PGresult **out, char *err, size_t errlen);
/* One value of a one-row query; malloc'ed (NULL for SQL NULL). */
int qdb_value(PGconn *c, const struct qsql *q, char **out, char *err, size_t errlen);
/* Failures map to exit codes through lib/pgconn.h's one table; query's
 * values all come from the command line, so a refused value (class 22) is
 * EXIT_USAGE: pgc_exit_for_value(c, err, EXIT_USAGE). */
#endif

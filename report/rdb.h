/*
 * rdb.h - cdrflow-report's side of PostgreSQL: connect, resolve the report
 * period in the report's time zone, stream a query's rows as typed report
 * values, and say which exit code a failure deserves.
 *
 * Rows are streamed with COPY (query) TO STDOUT in text format, so a
 * query's result never sits in memory as a whole: each row is split in
 * place, converted and handed to a callback, then freed.  The values are
 * the server's text output, as for an ordinary query.  Column names and
 * types come from describing the statement first: types from their OIDs
 * (see rdb_auto_type()) unless the template sets them.
 *
 * Every function returns EXIT_OK or an exit code of lib/exitcode.h with a
 * one-line message in err (never a password).
 */
#ifndef CDRFLOW_REPORT_RDB_H
#define CDRFLOW_REPORT_RDB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "period.h"

#include "table.h"
#include "tpl.h"

/* Connect (conninfo NULL/"" = the PG* environment), set the session time
 * zone to tz and ISO date output.  *out is the connection on EXIT_OK.
 * Unreachable -> EXIT_UNAVAILABLE; unknown zone -> EXIT_USAGE. */
int rdb_connect(const char *conninfo, const char *tz, PGconn **out, char *err, size_t errlen);

/* The report period: period_resolve() (lib/period.h, the parser
 * cdrflow-query shares), with a failure of the query mapped to this
 * layer's exit code. */
int rdb_period(PGconn *c, const char *from, const char *to, const char *tz, struct period *p, char *err, size_t errlen);

/* Check that value is a valid literal of the parameter's type (via a cast
 * on the server).  EXIT_USAGE if not. */
int rdb_check_value(PGconn *c, enum tpl_ptype type, const char *value, char *err, size_t errlen);

/* Does the relation exist (to_regclass)?  *exists set on EXIT_OK. */
int rdb_relation_exists(PGconn *c, const char *name, int *exists, char *err, size_t errlen);

/* Run SQL without rows (BEGIN, COMMIT, SET). */
int rdb_exec(PGconn *c, const char *sql, char *err, size_t errlen);

/* The report type of a result column from its type OID, typmod and name
 * (money columns are named *cost or *margin, in micro-units). */
void rdb_auto_type(unsigned oid, int typmod, const char *name, struct rcol *out);

/* Callbacks of rdb_stream(): begin once with the typed columns (also for an
 * empty result), row once per row.  Values and names are borrowed for the
 * call.  Return 0, or -1 with a message in err to stop the query. */
struct rdb_cb {
	int (*begin)(void *arg, const struct rcol *cols, size_t ncols, char *err, size_t errlen);
	int (*row)(void *arg, const struct rval *vals, char *err, size_t errlen);
	void *arg;
};

/* Stream sql with its parameters (values[i] NULL = SQL NULL; types[i] the
 * parameter types; COPY takes none, so they go in as quoted literals of
 * their type), typing columns by defs where listed.  A def naming no
 * column of the result is a template error (EXIT_DATAERR).  A callback
 * failure stops the query (cancelled) and returns EXIT_IOERR.  *rows (may
 * be NULL) gets the number of rows streamed. */
int rdb_stream(PGconn *c, const struct tpl_sql *sql, const char *const *values, const enum tpl_ptype *types,
	       const struct tpl_column *defs, size_t ndefs, const struct rdb_cb *cb, unsigned long long *rows,
	       char *err, size_t errlen);

#endif

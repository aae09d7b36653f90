/*
 * pg.h - the libpq layer of cdrflow-etl: connect, run, check, classify
 * failures as "retry later" (server unreachable, shutting down) or "fix
 * something" (bad SQL, constraint violations).
 */
#ifndef CDRFLOW_PG_H
#define CDRFLOW_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connect with a libpq conninfo (NULL or "" = the PG* environment).
 * Returns NULL with a one-line reason in err (the password never appears). */
PGconn *pg_connect(const char *conninfo, const char *application, char *err, size_t errlen);
/* A second connection to the same server and database as c, as the same
 * user (used to hold a lock row); NULL with err. */
PGconn *pg_connect_like(PGconn *c, const char *application, char *err, size_t errlen);
/* SET lock_timeout = dflt unless the session has one already (PGOPTIONS,
 * ALTER ROLE SET): no lock wait of cdrflow-etl is endless.  0 or -1. */
int pg_default_lock_timeout(PGconn *c, const char *dflt, char *err, size_t errlen);
/* Run SQL that returns no rows; 0 or -1 with err filled ("SQLSTATE: message"). */
int pg_exec(PGconn *c, const char *sql, char *err, size_t errlen);
/* Run a query returning one value; a malloc'ed string (NULL for SQL NULL) in
 * *out.  0 or -1 with err. */
int pg_query_value(PGconn *c, const char *sql, char **out, char *err, size_t errlen);
/* The exit code for the last failure on c: EXIT_UNAVAILABLE when the
 * connection is gone or the server is starting/stopping, EXIT_TEMPFAIL for a
 * lock wait that passed lock_timeout (55P03), else EXIT_SOFTWARE. */
int pg_failure_exit(PGconn *c, const char *sqlstate);
/* The same, taking the SQLSTATE from an err string made by pg_exec() and
 * friends ("XXXXX: message"). */
int pg_error_exit(PGconn *c, const char *err);

#endif

/*
 * pgconn.h - connecting to PostgreSQL, the same way in every program
 * (cdrflow-etl, cdrflow-query, cdrflow-report): the part of the libpq
 * layer they share.
 */
#ifndef CDRFLOW_PGCONN_H
#define CDRFLOW_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connect with a libpq conninfo or URI (NULL or "" = the PG* environment),
 * as application `app`; server notices go to the debug log.  NULL with a
 * one-line reason in err (the password never appears); *refused (when not
 * NULL) is 1 if the server refused the credentials, 0 otherwise. */
PGconn *pgc_connect(const char *conninfo, const char *app, int *refused, char *err, size_t errlen);

/* A second connection to the same server and database as c (its conninfo,
 * the password included, never printed), as application `app`. */
PGconn *pgc_connect_like(PGconn *c, const char *app, char *err, size_t errlen);

/* err = "SQLSTATE: message" of the failed result r (may be NULL) on c, one
 * line (the form every program's exit-code mapping reads). */
void pgc_result_error(const PGresult *r, PGconn *c, char *err, size_t errlen);

/* Make a libpq message one line: CR/LF become spaces, a trailing one goes. */
void pgc_one_line(char *s);

#endif

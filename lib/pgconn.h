/*
 * pgconn.h - connecting to PostgreSQL, the same way in every program
 * (cdrflow-etl, cdrflow-query, cdrflow-report): the part of the libpq
 * layer they share.
 */
#ifndef CDRFLOW_PGCONN_H
#define CDRFLOW_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

/* 1 if the conninfo (key=value or postgresql:// URI) carries a password,
 * which would show in ps for the life of the process; else 0 (also when it
 * does not parse: connecting will say what is wrong).  Every program
 * refuses such a --db with CONNINFO_PASSWORD_REFUSED. */
int conninfo_has_password(const char *conninfo);
#define CONNINFO_PASSWORD_REFUSED \
	"--db must not carry a password (it would show in ps): use PGPASSWORD, PGPASSFILE/~/.pgpass or the config file"

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

/* ---------------------------------------------------------- running SQL
 * Every program runs its SQL through these.  On failure they return -1 with
 * "SQLSTATE: message" in err (pgc_result_error), which pgc_error_exit()
 * turns into the exit code. */

/* Run SQL that returns no rows (or rows nobody reads). */
int pgc_exec(PGconn *c, const char *sql, char *err, size_t errlen);
/* The settings of a session that reads reports and answers queries: no
 * JIT.  Their statements read rollups and indexed ranges in milliseconds;
 * the legs-only branch of a rollup query, never run but costed, put them
 * over jit_above_cost, and compiling took longer than the whole answer. */
int pgc_reader_session(PGconn *c, char *err, size_t errlen);
/* Run SQL with text parameters $1..$n (NULL = SQL NULL); the result, rows
 * or not, in *out (PQclear it), or NULL and -1. */
int pgc_exec_params(PGconn *c, const char *sql, int n, const char *const *values, PGresult **out, char *err,
		    size_t errlen);
/* The first column of the first row, malloc'ed, in *out (NULL for SQL NULL
 * or no row). */
int pgc_value(PGconn *c, const char *sql, char **out, char *err, size_t errlen);
/* SET lock_timeout = dflt unless the session has one already (PGOPTIONS,
 * ALTER ROLE ... SET): no lock wait is endless.  0 or -1. */
int pgc_default_lock_timeout(PGconn *c, const char *dflt, char *err, size_t errlen);

/* ------------------------------------------------------------- failures
 * The one SQLSTATE -> exit-code table (docs/exit-codes.md, "Database
 * errors"):
 *   connection gone, 08, 57P, 53                 EXIT_UNAVAILABLE  retry later
 *   57014 cancelled, 40 rollback, 55P03 lock      EXIT_TEMPFAIL     retry later
 *   28 authorization, 42501 privilege             EXIT_NOPERM
 *   42P01, 42703, 42883, 3F000 (schema lacks it)  EXIT_CONFIG       run migrate
 *   22, 23, 21, 25, 0A, P0, other 42              EXIT_DATAERR      the SQL or a value
 *   anything else, no SQLSTATE                    EXIT_SOFTWARE
 * A caller that knows where a refused value came from may say so: a class
 * 22 (or P0001) value from the command line is EXIT_USAGE, from the config EXIT_CONFIG
 * (pgc_exit_for_value). */
int pgc_state_exit(PGconn *c, const char *sqlstate);
/* The SQLSTATE at the head of err ("XXXXX: ..."), copied into st; "" when
 * there is none. */
const char *pgc_err_state(const char *err, char st[6]);
/* pgc_state_exit() of the SQLSTATE at the head of err. */
int pgc_error_exit(PGconn *c, const char *err);
/* pgc_error_exit(), with a refused value (class 22, or P0001: a RAISE of
 * the warehouse's own checks) turned into value_exit: for statements whose only inputs that can be
 * wrong are values the user gave (EXIT_USAGE, EXIT_CONFIG). */
int pgc_exit_for_value(PGconn *c, const char *err, int value_exit);

#endif

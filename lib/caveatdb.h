/*
 * caveatdb.h - read the input caveats (sql/0015_input_caveats.sql) that
 * overlap a period, for the programs that show data of that period
 * (cdrflow-report, cdrflow query).
 */
#ifndef CDRFLOW_CAVEATDB_H
#define CDRFLOW_CAVEATDB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* Print one line per caveat of [from, to) (timestamptz text; NULL = open
 * end) to out, each starting with prefix: "<prefix>node X, <period>: <caveat>
 * (restore: ...)".  A database without input_caveat has none.  *n = how many.
 * Returns 0, or -1 with err. */
int caveats_print(PGconn *c, const char *from, const char *to, FILE *out, const char *prefix, size_t *n, char *err,
		  size_t errlen);

#endif

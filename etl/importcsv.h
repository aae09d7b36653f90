/*
 * importcsv.h - backfill the cdr table from Asterisk's own Master.csv
 * (cdr_csv), with or without loguniqueid / loguserfield / newcdrcolumns.
 */
#ifndef CDRFLOW_IMPORTCSV_H
#define CDRFLOW_IMPORTCSV_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct import_opts {
	const char *node;     /* stamped on the rows (default "imported") */
	const char *timezone; /* zone of the file's dates (cdr_csv writes local time unless usegmtime) */
	int uniqueid;         /* -1 detect, 0 the file has no uniqueid column, 1 it has */
	int userfield;        /* the same for userfield */
	int force;            /* import even if this exact file was imported before */
};

/* Import one file in one transaction.  Returns an exit code; *rows gets the
 * number of legs loaded. */
/* The parse and transform of import_csv() without a database (fuzzing,
 * tests): validate f as Master.csv (both passes) and append its cdr rows in
 * COPY text format to out.  Returns an exit code, err says why. */
#include <stdio.h>
#include "buf.h"
int import_csv_transform(FILE *f, const struct import_opts *o, struct buf *out, uint64_t *rows, char *err,
			 size_t errlen);
int import_csv(PGconn *c, const char *path, const struct import_opts *o, uint64_t *rows, char *err, size_t errlen);

#endif

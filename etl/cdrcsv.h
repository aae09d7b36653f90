/*
 * cdrcsv.h - cdrflow-etl cdr-csv: rebuild the CDR rows from a spool with no
 * database and print them as Asterisk's Master.csv would (cdr_csv with
 * loguniqueid, loguserfield and newcdrcolumns; dates in UTC).
 */
#ifndef CDRFLOW_CDRCSV_H
#define CDRFLOW_CDRCSV_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct cdrcsv_stats {
	uint64_t events, rows, live;
};

int cdr_csv(const struct etl_config *cfg, FILE *out, struct cdrcsv_stats *st, char *err, size_t errlen);

/* One row in Master.csv layout (newcdrcolumns), dates as UTC "Y-m-d H:M:S". */
struct cdr_row;
void cdr_csv_row(FILE *out, const struct cdr_row *r);

#endif

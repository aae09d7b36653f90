/*
 * lcr.h - cdrflow-etl lcr: what the traffic of a period would have cost on
 * each carrier deck (least-cost-routing what-if).
 */
#ifndef CDRFLOW_LCR_H
#define CDRFLOW_LCR_H

#include <libpq-fe.h>
#include <stdio.h>

#include "legclass.h"

/* from/to: timestamps PostgreSQL understands (to exclusive).  Prints a
 * table to out.  Returns an exit code, err says why. */
int lcr_report(PGconn *c, const struct legclass *lc, const char *from, const char *to, FILE *out, char *err,
	       size_t errlen);

#endif

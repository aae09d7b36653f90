/*
 * period.h - the one period parser of cdrflow-query and cdrflow-report
 * (docs/report.md "PERIODS", docs/query.md "The period").
 *
 * A period is [from, to) in the session's TimeZone (the caller sets it to
 * --tz first): PostgreSQL does every calendar and time-zone computation.
 * FROM is a named period (today, yesterday, last-7-days, this-month,
 * last-month), a month (YYYY-MM), a date (YYYY-MM-DD), a range of dates
 * (D1..D2, both included) or a time; TO is NULL or, with a date or time
 * FROM, the end: a date is included (the whole day), a time is exclusive.
 * A time FROM without TO runs until now.
 */
#ifndef CDRFLOW_PERIOD_H
#define CDRFLOW_PERIOD_H

#include <libpq-fe.h>
#include <stddef.h>

struct period {
	char from[64], to[64];         /* timestamptz text, to exclusive */
	char from_lbl[32], to_lbl[32]; /* for file names: dates (to inclusive) or YYYY-MM-DDTHHMM */
	char display[160];             /* "2026-11-01 .. 2026-11-30 (Europe/Berlin)" */
};

/* Resolve FROM [TO] (tz only names the zone in p->display).  Returns 0;
 * EXIT_USAGE with a message for a bad or empty period; -1 when the query
 * failed for another reason, with "SQLSTATE: message" in err (the caller's
 * libpq layer maps it to an exit code). */
int period_resolve(PGconn *c, const char *from, const char *to, const char *tz, struct period *p, char *err,
		   size_t errlen);

#endif

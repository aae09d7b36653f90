/*
 * period.c - the one period parser (period.h).
 */
#include "period.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "pgconn.h"

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int is_date(const char *s)
{
	return strlen(s) == 10 && is_digits(s, 4) && s[4] == '-' && is_digits(s + 5, 2) && s[7] == '-' && is_digits(s + 8, 2);
}

static int is_month(const char *s)
{
	return strlen(s) == 7 && is_digits(s, 4) && s[4] == '-' && is_digits(s + 5, 2);
}

static const struct {
	const char *name, *lo, *hi;
} named_periods[] = {
	{ "today", "current_date::timestamptz", "(current_date + 1)::timestamptz" },
	{ "yesterday", "(current_date - 1)::timestamptz", "current_date::timestamptz" },
	{ "last-7-days", "(current_date - 7)::timestamptz", "current_date::timestamptz" },
	{ "this-month", "date_trunc('month', current_date::timestamptz)",
	  "date_trunc('month', current_date::timestamptz) + interval '1 month'" },
	{ "last-month", "date_trunc('month', current_date::timestamptz) - interval '1 month'",
	  "date_trunc('month', current_date::timestamptz)" },
};

#define WANT_PERIOD                                                                                             \
	"want today, yesterday, last-7-days, this-month, last-month, YYYY-MM, YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD " \
	"or a time (YYYY-MM-DD HH:MM[:SS][+ZZ])"

/* The SQL of the bounds ($1 = a, $2 = b), or EXIT_USAGE with err. */
static int bounds(const char *from, const char *to, const char **lo, const char **hi, char *a, char *b, size_t ab,
		  char *err, size_t errlen)
{
	const char *dots = strstr(from, "..");
	*lo = *hi = NULL;
	for (size_t i = 0; i < sizeof named_periods / sizeof named_periods[0]; i++)
		if (!strcmp(from, named_periods[i].name)) {
			*lo = named_periods[i].lo;
			*hi = named_periods[i].hi;
		}
	if ((*lo || dots || is_month(from)) && to) {
		snprintf(err, errlen, "--to goes with a date or a time in --from, not with the period \"%s\"", from);
		return EXIT_USAGE;
	}
	if (*lo)
		return 0;
	if (dots) {
		snprintf(a, ab, "%.*s", (int)(dots - from), from);
		snprintf(b, ab, "%s", dots + 2);
		if (!is_date(a) || !is_date(b)) {
			snprintf(err, errlen, "bad period \"%s\": want YYYY-MM-DD..YYYY-MM-DD", from);
			return EXIT_USAGE;
		}
		*lo = "$1::date::timestamptz";
		*hi = "($2::date + 1)::timestamptz";
		return 0;
	}
	if (is_month(from)) {
		snprintf(a, ab, "%s-01", from);
		*lo = "$1::date::timestamptz";
		*hi = "$1::date::timestamptz + interval '1 month'";
		return 0;
	}
	if (!isdigit((unsigned char)from[0]) || strlen(from) >= ab) {
		snprintf(err, errlen, "bad period \"%s\": " WANT_PERIOD, from);
		return EXIT_USAGE;
	}
	snprintf(a, ab, "%s", from);
	*lo = is_date(from) ? "$1::date::timestamptz" : "$1::timestamptz";
	if (!to) {
		*hi = is_date(from) ? "($1::date + 1)::timestamptz" : "now()";
		return 0;
	}
	if (!isdigit((unsigned char)to[0]) || strlen(to) >= ab) {
		snprintf(err, errlen, "bad --to \"%s\": want YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS][+ZZ]", to);
		return EXIT_USAGE;
	}
	snprintf(b, ab, "%s", to);
	*hi = is_date(to) ? "($2::date + 1)::timestamptz" : "$2::timestamptz";
	return 0;
}

int period_resolve(PGconn *c, const char *from, const char *to, const char *tz, struct period *p, char *err,
		   size_t errlen)
{
	const char *lo, *hi;
	char a[64] = "", b[64] = "";
	memset(p, 0, sizeof *p);
	int rc = bounds(from, to, &lo, &hi, a, b, sizeof a, err, errlen);
	if (rc)
		return rc;
	char sql[1024];
	snprintf(sql, sizeof sql,
		 "SELECT lo::text, hi::text, lo < hi, lo = date_trunc('day', lo) AND hi = date_trunc('day', hi), "
		 "to_char(lo, 'YYYY-MM-DD'), to_char(hi - interval '1 day', 'YYYY-MM-DD'), "
		 "to_char(lo, 'YYYY-MM-DD\"T\"HH24MI'), to_char(hi, 'YYYY-MM-DD\"T\"HH24MI'), "
		 "to_char(lo, 'YYYY-MM-DD HH24:MI'), to_char(hi, 'YYYY-MM-DD HH24:MI') "
		 "FROM (SELECT (%s)::timestamptz AS lo, (%s)::timestamptz AS hi) p",
		 lo, hi);
	const Oid types[2] = { 25, 25 }; /* text */
	const char *vals[2] = { a, b };
	PGresult *r = PQexecParams(c, sql, 2, types, vals, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		if (state && !strncmp(state, "22", 2)) { /* data exception: not a date or time */
			snprintf(err, errlen, "bad period \"%s%s%s\": not a valid date or time", from, to ? "\" .. \"" : "",
				 to ? to : "");
			rc = EXIT_USAGE;
		} else {
			snprintf(err, errlen, "%s%speriod: %s", state ? state : "", state ? ": " : "",
				 r ? PQresultErrorMessage(r) : PQerrorMessage(c));
			pgc_one_line(err);
			rc = -1;
		}
		PQclear(r);
		return rc;
	}
	if (strcmp(PQgetvalue(r, 0, 2), "t") != 0) {
		snprintf(err, errlen, "empty period: %s is not before %s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		PQclear(r);
		return EXIT_USAGE;
	}
	snprintf(p->from, sizeof p->from, "%s", PQgetvalue(r, 0, 0));
	snprintf(p->to, sizeof p->to, "%s", PQgetvalue(r, 0, 1));
	if (!strcmp(PQgetvalue(r, 0, 3), "t")) {
		snprintf(p->from_lbl, sizeof p->from_lbl, "%s", PQgetvalue(r, 0, 4));
		snprintf(p->to_lbl, sizeof p->to_lbl, "%s", PQgetvalue(r, 0, 5));
		if (!strcmp(p->from_lbl, p->to_lbl))
			snprintf(p->display, sizeof p->display, "%s (%s)", p->from_lbl, tz);
		else
			snprintf(p->display, sizeof p->display, "%s .. %s (%s)", p->from_lbl, p->to_lbl, tz);
	} else {
		snprintf(p->from_lbl, sizeof p->from_lbl, "%s", PQgetvalue(r, 0, 6));
		snprintf(p->to_lbl, sizeof p->to_lbl, "%s", PQgetvalue(r, 0, 7));
		snprintf(p->display, sizeof p->display, "%s .. %s (%s, end exclusive)", PQgetvalue(r, 0, 8),
			 PQgetvalue(r, 0, 9), tz);
	}
	PQclear(r);
	return 0;
}

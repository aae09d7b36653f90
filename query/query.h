/*
 * query.h - the commands of cdrflow-query (calls, stats, flow) and the
 * options they share.  main.c parses the command line into struct qopts,
 * opens the connection, resolves the period, and calls one of these.  Each
 * returns an exit code (lib/exitcode.h) and logs its own errors.
 */
#ifndef CDRFLOW_QUERY_H
#define CDRFLOW_QUERY_H
#include <libpq-fe.h>
#include <stdio.h>

#include "qout.h"

struct qopts {
	/* period: resolved to timestamptz text by main.c (session TimeZone = tz) */
	const char *from, *to, *period, *tz;
	char *from_ts, *to_ts;
	/* filters */
	const char *src, *dst, *dst_raw, *disposition, *tenant, *trunk, *min_billsec;
	int legs;
	/* stats */
	const char *by, *source;
	/* flow */
	const char *linkedid;
	const char *node; /* flow: the node whose events (NULL: the only one there is) */
	int all_events;
	/* output */
	enum qout_format fmt;
	int fmt_set;
	int header;
	long long limit; /* 0 = no limit */
	int explain;
	int verbose, quiet;
	FILE *out;
};

/* 1 if table.column exists (0 if not, -1 with err on a query error). */
int q_has_column(PGconn *c, const char *table, const char *column, char *err, size_t errlen);
/* Read the columns of every table in the NULL-terminated list (distinct
 * tables) in one query: q_has_column() then answers for them without
 * asking the server again (0; -1 with err).  q_schema_release() frees what
 * it holds. */
int q_schema_load(PGconn *c, const char *const *tables, char *err, size_t errlen);
void q_schema_release(void);

int q_calls(PGconn *c, const struct qopts *o);
int q_stats(PGconn *c, const struct qopts *o);
int q_flow(PGconn *c, const struct qopts *o);

/* Helpers shared by the commands. */
struct qsql;
/* Run q and print its rows in o's format (streamed); the exit code. */
int q_emit(PGconn *c, const struct qsql *q, const struct qopts *o, unsigned long long *rows);
/* Print EXPLAIN (FORMAT JSON) of q with the same parameters. */
int q_explain(PGconn *c, const struct qsql *q, const struct qopts *o);
/* The smallest string above every string that starts with p (digits after an
 * optional '+'): "+4420" -> "+4421", "+449" -> "+45"; NULL when there is
 * none ("+99").  malloc'ed. */
char *q_prefix_upper(const char *p);
#endif

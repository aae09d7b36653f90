/*
 * calls.c - "cdrflow-query calls" (one line per call, or per leg with
 * --legs) and the streaming of any query into a struct qout.
 *
 * Every filter value is a bind parameter.  Index use (docs/query.md):
 *   period            call (start) / cdr (calldate, dst)
 *   --tenant          call (tenant, start) / cdr (tenant, calldate)
 *   --src             cdr (src, calldate) for legs; call (src, start, call_id)
 *                     INCLUDE (the listing's columns, 0075) for calls: an
 *                     index-only scan
 *   --dst (E.164)     cdr (dst_e164, calldate): a range on the prefix
 *   --dst-raw         cdr (calldate, uniqueid) within the period
 * For calls, leg filters (--dst, --dst-raw, --trunk) either walk the calls
 * in output order and look up each one's legs by cdr (call_id), when a
 * page is found among the first calls (walk_size measures it), or select
 * the call_ids of matching legs first (an InitPlan array), then the calls
 * by call (call_id).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "e164.h"
#include "exitcode.h"
#include "log.h"
#include "pgconn.h"
#include "qdb.h"
#include "query.h"
#include "xalloc.h"

char *q_prefix_upper(const char *p)
{
	char *u = xstrdup(p);
	size_t n = strlen(u);
	while (n > 0 && u[n - 1] == '9')
		n--;
	if (n == 0 || !isdigit((unsigned char)u[n - 1])) {
		free(u);
		return NULL;
	}
	u[n - 1]++;
	u[n] = '\0';
	return u;
}

/* The columns of the relations q_schema_load() read, one "table.column"
 * string each (sorted), and the relations read (cdrflow-query opens one
 * connection: the cache is the process's). */
static struct {
	const PGconn *conn;
	char **tables, **cols;
	size_t ntables, ncols;
} schema;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void q_schema_release(void)
{
	for (size_t i = 0; i < schema.ntables; i++)
		free(schema.tables[i]);
	for (size_t i = 0; i < schema.ncols; i++)
		free(schema.cols[i]);
	free(schema.tables);
	free(schema.cols);
	memset(&schema, 0, sizeof schema);
}

int q_schema_load(PGconn *c, const char *const *tables, char *err, size_t errlen)
{
	struct qsql q;
	PGresult *r;
	size_t n = 0;
	while (tables[n])
		n++;
	qsql_init(&q);
	/* what q_has_column() asks, for every column of every table at once:
	 * one index scan of pg_attribute by the tables' oids (a join with the
	 * list of names costs more to plan than the probes it replaces) */
	qsql_text(&q, "SELECT array_position(r.a, a.attrelid), a.attname FROM (SELECT ARRAY[");
	for (size_t i = 0; i < n; i++) {
		qsql_text(&q, i ? ", to_regclass(" : "to_regclass(");
		qsql_param(&q, tables[i]);
		qsql_text(&q, ")::oid");
	}
	qsql_text(&q, "] AS a) r, pg_attribute a WHERE a.attrelid = ANY (r.a) AND a.attnum > 0 AND NOT a.attisdropped");
	int rc = qdb_exec(c, &q, &r, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	q_schema_release();
	schema.conn = c;
	schema.ntables = n;
	schema.tables = xcalloc(n + 1, sizeof *schema.tables);
	for (size_t i = 0; i < n; i++)
		schema.tables[i] = xstrdup(tables[i]);
	schema.cols = xcalloc((size_t)PQntuples(r) + 1, sizeof *schema.cols);
	for (int i = 0; i < PQntuples(r); i++) {
		long t = strtol(PQgetvalue(r, i, 0), NULL, 10); /* 1-based (the list names distinct tables) */
		if (t >= 1 && (size_t)t <= n)
			schema.cols[schema.ncols++] = xasprintf("%s.%s", tables[t - 1], PQgetvalue(r, i, 1));
	}
	PQclear(r);
	qsort(schema.cols, schema.ncols, sizeof *schema.cols, cmp_str);
	return 0;
}

int q_has_column(PGconn *c, const char *table, const char *column, char *err, size_t errlen)
{
	if (schema.conn == c)
		for (size_t i = 0; i < schema.ntables; i++)
			if (!strcmp(schema.tables[i], table)) { /* loaded: answered from the cache */
				char *key = xasprintf("%s.%s", table, column);
				int found = bsearch(&key, schema.cols, schema.ncols, sizeof *schema.cols, cmp_str) != NULL;
				free(key);
				return found;
			}
	struct qsql q;
	char *v = NULL;
	qsql_init(&q);
	qsql_text(&q, "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(");
	qsql_param(&q, table);
	qsql_text(&q, ") AND attname = ");
	qsql_param(&q, column);
	qsql_text(&q, " AND attnum > 0 AND NOT attisdropped");
	int rc = qdb_value(c, &q, &v, err, errlen);
	qsql_release(&q);
	if (rc < 0)
		return -1;
	rc = v && strcmp(v, "0") ? 1 : 0;
	free(v);
	return rc;
}

/* ---------------------------------------------------------------- streaming into qout */

struct emit {
	struct qout q;
	unsigned long long rows;
	const char **vals;
	int write_failed;
};

static enum qout_kind kind_of(Oid t)
{
	switch (t) {
	case 20: case 21: case 23: case 700: case 701: case 1700: return QOUT_NUMBER;
	case 16: return QOUT_BOOL;
	default: return QOUT_TEXT;
	}
}

static int emit_begin(void *arg, const PGresult *r)
{
	struct emit *e = arg;
	int n = PQnfields(r);
	const char **names = xcalloc((size_t)n + 1, sizeof *names);
	enum qout_kind *kinds = xcalloc((size_t)n + 1, sizeof *kinds);
	for (int i = 0; i < n; i++) {
		names[i] = PQfname(r, i);
		kinds[i] = kind_of(PQftype(r, i));
	}
	qout_begin(&e->q, (size_t)n, names, kinds);
	free(names);
	free(kinds);
	e->vals = xcalloc((size_t)n + 1, sizeof *e->vals);
	return 0;
}

static int emit_row(void *arg, const PGresult *r, int row)
{
	struct emit *e = arg;
	for (size_t i = 0; i < e->q.ncols; i++)
		e->vals[i] = PQgetisnull(r, row, (int)i) ? NULL : PQgetvalue(r, row, (int)i);
	e->rows++;
	if (qout_row(&e->q, e->vals) < 0) {
		e->write_failed = 1;
		return -1;
	}
	return 0;
}

/* Run q, print its rows in o's format; the exit code. */
int q_emit(PGconn *c, const struct qsql *q, const struct qopts *o, unsigned long long *rows)
{
	struct emit e;
	char err[1024];
	memset(&e, 0, sizeof e);
	qout_init(&e.q, o->fmt, o->out);
	e.q.header = o->header;
	struct qdb_sink sink = { emit_begin, emit_row, &e };
	int rc = qdb_stream(c, q, &sink, err, sizeof err);
	int ex = EXIT_OK;
	if (rc < 0 && e.write_failed) {
		log_error("cannot write the output: %s", strerror(errno ? errno : EIO));
		ex = EXIT_IOERR;
	} else if (rc < 0) {
		log_error("query failed: %s", err);
		ex = pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	if (e.vals && qout_end(&e.q) < 0 && ex == EXIT_OK) {
		log_error("cannot write the output: %s", strerror(errno ? errno : EIO));
		ex = EXIT_IOERR;
	}
	free(e.vals);
	qout_release(&e.q);
	if (rows)
		*rows = e.rows;
	return ex;
}

/* EXPLAIN (FORMAT JSON) of q, printed as it is (one JSON document). */
int q_explain(PGconn *c, const struct qsql *q, const struct qopts *o)
{
	struct qsql e;
	PGresult *r;
	char err[1024];
	qsql_init(&e);
	qsql_text(&e, "EXPLAIN (FORMAT JSON) ");
	qsql_text(&e, q->sql.data);
	for (size_t i = 0; i < q->n; i++) { /* same parameters, same numbers */
		if (e.n == e.cap) {
			e.cap = e.cap ? e.cap * 2 : 8;
			e.params = xrealloc(e.params, e.cap * sizeof *e.params);
		}
		e.params[e.n++] = q->params[i] ? xstrdup(q->params[i]) : NULL;
	}
	int rc = qdb_exec(c, &e, &r, err, sizeof err);
	qsql_release(&e);
	if (rc < 0) {
		log_error("explain failed: %s", err);
		return pgc_exit_for_value(c, err, EXIT_USAGE);
	}
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(o->out, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	return fflush(o->out) == 0 ? EXIT_OK : EXIT_IOERR;
}

/* ---------------------------------------------------------------- filters */

static const char *const outcomes[] = { "answered", "busy", "no_answer", "failed", "congestion", NULL };

/* "NO ANSWER", "no-answer", "No_Answer" -> "no_answer" (calls) or "NO ANSWER" (legs) */
static char *norm_disposition(const char *s, int legs)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (*p == ' ' || *p == '-') ? '_' : (char)tolower((unsigned char)*p);
	int ok = 0;
	for (int i = 0; outcomes[i]; i++)
		ok |= !strcmp(d, outcomes[i]);
	if (!ok) {
		free(d);
		return NULL;
	}
	if (legs)
		for (char *p = d; *p; p++)
			*p = *p == '_' ? ' ' : (char)toupper((unsigned char)*p);
	return d;
}

/* the trunk part of a channel expression: "SIP/loop-0000000f" -> "SIP/loop" */
#define TRUNK_OF(col) "regexp_replace(" col ", '-[0-9a-fA-F]+(;[0-9]+)?$', '')"

/* src: exact, or a prefix when it ends with '*' */
static void add_src(struct qsql *q, const char *col, const char *src)
{
	size_t n = strlen(src);
	if (n && src[n - 1] == '*') {
		char *p = xstrndup(src, n - 1);
		qsql_text(q, " AND starts_with(");
		qsql_text(q, col);
		qsql_text(q, ", ");
		qsql_param(q, p);
		qsql_text(q, ")");
		free(p);
	} else {
		qsql_text(q, " AND ");
		qsql_text(q, col);
		qsql_text(q, " = ");
		qsql_param(q, src);
	}
}

/* The leg filters (alias l) that need cdr: --dst, --dst-raw, --trunk. */
static void add_leg_filters(struct qsql *q, const struct qopts *o, const char *e164, const char *upper)
{
	if (e164) {
		qsql_text(q, " AND l.dst_e164 >= ");
		size_t pe = qsql_param(q, e164);
		if (upper) {
			qsql_text(q, " AND l.dst_e164 < ");
			qsql_param(q, upper);
		}
		qsql_text(q, " AND starts_with(l.dst_e164, ");
		qsql_ref(q, pe);
		qsql_text(q, ")");
	}
	if (o->dst_raw) {
		size_t n = strlen(o->dst_raw);
		char *p = xstrndup(o->dst_raw, n && o->dst_raw[n - 1] == '*' ? n - 1 : n);
		qsql_text(q, " AND starts_with(l.dst, ");
		qsql_param(q, p);
		qsql_text(q, ")");
		free(p);
	}
	if (o->trunk) {
		/* TRUNK_OF() only cuts a tail, so a channel on trunk T starts
		 * with T: the cheap starts_with() first spares the regexp (2-3 us
		 * a call) on every other leg; the match is the same */
		qsql_text(q, " AND ((starts_with(l.channel, ");
		size_t pt = qsql_param(q, o->trunk);
		qsql_text(q, ") AND " TRUNK_OF("l.channel") " = ");
		qsql_ref(q, pt);
		qsql_text(q, ") OR (starts_with(l.dstchannel, ");
		qsql_ref(q, pt);
		qsql_text(q, ") AND " TRUNK_OF("l.dstchannel") " = ");
		qsql_ref(q, pt);
		qsql_text(q, "))");
	}
}

/* ---------------------------------------------------------------- calls */

struct callq {
	const struct qopts *o;
	const char *disp, *e164, *upper, *tfmt;
	int has_mos, has_source;
};

/* the calls of the period that pass the call filters (alias c) */
static void call_where(struct qsql *q, const struct callq *cq, size_t *pf, size_t *pt)
{
	const struct qopts *o = cq->o;
	qsql_text(q, " c.start >= ");
	*pf = qsql_param(q, o->from_ts);
	qsql_text(q, "::timestamptz AND c.start < ");
	*pt = qsql_param(q, o->to_ts);
	qsql_text(q, "::timestamptz");
	if (o->src)
		add_src(q, "c.src", o->src);
	if (o->tenant) {
		qsql_text(q, " AND c.tenant = ");
		qsql_param(q, o->tenant);
	}
	if (cq->disp) {
		qsql_text(q, " AND c.outcome = ");
		qsql_param(q, cq->disp);
	}
	if (o->min_billsec) {
		qsql_text(q, " AND c.total_billsec >= ");
		qsql_param(q, o->min_billsec);
		qsql_text(q, "::integer");
	}
}

/* the legs (alias l) in the window of the period's calls that pass the
 * leg filters (pf, pt: the period's parameters, 0 = new ones): legs start at or after their call, so those of the
 * period's calls start before --to plus a day (longer calls: docs) */
static void leg_window(struct qsql *q, const struct callq *cq, size_t pf, size_t pt)
{
	qsql_text(q, " l.calldate >= ");
	if (pf)
		qsql_ref(q, pf);
	else
		qsql_param(q, cq->o->from_ts);
	qsql_text(q, "::timestamptz AND l.calldate < ");
	if (pt)
		qsql_ref(q, pt);
	else
		qsql_param(q, cq->o->to_ts);
	qsql_text(q, "::timestamptz + interval '1 day' AND l.call_id IS NOT NULL");
	add_leg_filters(q, cq->o, cq->e164, cq->upper);
}

/* "WITH cand AS (the first k calls of the period, in output order)" */
static void walk_cand(struct qsql *q, const struct callq *cq, long long k, size_t *pf, size_t *pt)
{
	char kb[32];
	snprintf(kb, sizeof kb, "%lld", k);
	qsql_text(q, "WITH cand AS MATERIALIZED (SELECT c.* FROM call c WHERE");
	call_where(q, cq, pf, pt);
	qsql_text(q, " ORDER BY c.start, c.call_id LIMIT ");
	qsql_param(q, kb);
	qsql_text(q, "::bigint)");
}

/*
 * The kinds of the nodes (source_node, 0017) a listing's rows are joined
 * to, as "s" (s.type): source_node read once into a CTE, each row's node
 * looked up in it by a lateral probe (node is source_node's key: one row
 * or none; LIMIT 1 keeps the probe a probe).  source_node holds a few rows,
 * or none: joined directly, a planner that knows it empty rescans the
 * table for every row, and each rescan asks the kernel for the table's
 * size (lseek): 10 of the 14 ms the month's 5,000 calls of one --src took
 * to execute; joined to a CTE instead, a planner that guesses it bigger
 * hashes it and sorts the rows again (10 ms).  The probe is memoized per
 * node and the rows keep their index order, whatever the statistics say
 * (5 ms).  source_cte opens the CTE ("with": a WITH clause is open
 * already), source_join joins it on the row's node column.
 */
static void source_cte(struct qsql *q, int with)
{
	qsql_text(q, with ? ", node_kind AS MATERIALIZED (SELECT sn.node, sn.type FROM source_node sn) "
			  : "WITH node_kind AS MATERIALIZED (SELECT sn.node, sn.type FROM source_node sn) ");
}

static void source_join(struct qsql *q, const char *node_col)
{
	qsql_text(q, " LEFT JOIN LATERAL (SELECT nk.type FROM node_kind nk WHERE nk.node = ");
	qsql_text(q, node_col);
	qsql_text(q, " LIMIT 1) s ON true");
}

/* the legs of the candidates that pass the leg filters: found by call_id */
static void cand_legs(struct qsql *q, const struct callq *cq, size_t pf, size_t pt)
{
	qsql_text(q, "SELECT l.call_id FROM cdr l WHERE l.call_id = ANY (ARRAY(SELECT cand.call_id FROM cand)) AND");
	leg_window(q, cq, pf, pt);
}

/*
 * A page of calls with leg filters (--dst, --dst-raw, --trunk) is the first
 * --limit calls in start order that have a matching leg.  When matches are
 * common, walking the calls in that order and looking up each one's legs
 * by call_id stops after a few thousand calls; when they are rare, finding
 * the matching legs first (an index range for --dst, a pass over the
 * period's legs otherwise) is cheaper.  Which one is measured, not
 * guessed: the first k = 16 x --limit calls are checked (then 128 x, when
 * an eighth of a page matched); when at least --limit of them match, the
 * page is among them (every later call comes after them in the order), and
 * when they are all the period's calls (the call filters left fewer) the
 * answer is: *k is that size.  Else *k = 0, the legs first.  With --dst,
 * whose legs an index finds, the legs come first when fewer than 4 pages
 * of them match (a count that stops there: cheap).
 */
#define WALK_MAX 200000LL
static int walk_size(PGconn *c, const struct callq *cq, long long *k)
{
	char err[1024];
	*k = 0;
	if (cq->e164 && cq->o->limit * 4 <= WALK_MAX) {
		/* the (dst_e164, calldate) index finds the matching legs: when
		 * there are few, finding them first is the cheaper way */
		char cap[32];
		char *v = NULL;
		struct qsql q;
		snprintf(cap, sizeof cap, "%lld", cq->o->limit * 4);
		qsql_init(&q);
		/* the index's columns only (an index-only scan): the legs of
		 * the window with the prefix, an upper bound of the matches */
		qsql_text(&q, "SELECT count(*) FROM (SELECT 1 FROM cdr l WHERE l.calldate >= ");
		qsql_param(&q, cq->o->from_ts);
		qsql_text(&q, "::timestamptz AND l.calldate < ");
		qsql_param(&q, cq->o->to_ts);
		qsql_text(&q, "::timestamptz + interval '1 day' AND l.dst_e164 >= ");
		qsql_param(&q, cq->e164);
		if (cq->upper) {
			qsql_text(&q, " AND l.dst_e164 < ");
			qsql_param(&q, cq->upper);
		}
		qsql_text(&q, " LIMIT ");
		qsql_param(&q, cap);
		qsql_text(&q, "::bigint) x");
		int rc = qdb_value(c, &q, &v, err, sizeof err);
		qsql_release(&q);
		if (rc < 0) {
			log_error("query failed: %s", err);
			return pgc_exit_for_value(c, err, EXIT_USAGE);
		}
		long long n = v ? strtoll(v, NULL, 10) : 0;
		free(v);
		log_debug("calls: %lld matching legs (counted up to %s)", n, cap);
		if (n < cq->o->limit * 4)
			return EXIT_OK;
	}
	for (long long m = 16; m <= 128; m *= 8) {
		long long n = cq->o->limit * m;
		if (n > WALK_MAX)
			break;
		struct qsql q;
		size_t pf, pt;
		PGresult *r = NULL;
		qsql_init(&q);
		walk_cand(&q, cq, n, &pf, &pt);
		qsql_text(&q, " SELECT (SELECT count(*) FROM cand), (SELECT count(DISTINCT x.call_id) FROM (");
		cand_legs(&q, cq, pf, pt);
		qsql_text(&q, ") x)");
		int rc = qdb_exec(c, &q, &r, err, sizeof err);
		qsql_release(&q);
		if (rc < 0) {
			log_error("query failed: %s", err);
			return pgc_exit_for_value(c, err, EXIT_USAGE);
		}
		long long ncand = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		long long nmatch = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		PQclear(r);
		log_debug("calls: %lld of the first %lld calls have a matching leg", nmatch, ncand);
		/* a page, or all the period's calls (the call filters left
		 * fewer than k: checking them costs what this did) */
		if (nmatch >= cq->o->limit || ncand < n) {
			*k = n;
			return EXIT_OK;
		}
		/* too few matches for 8 times as many calls to hold a page:
		 * the legs first */
		if (nmatch * 8 < cq->o->limit)
			break;
	}
	return EXIT_OK;
}

/* The calls query: with k > 0 among the first k calls (walk_size), else
 * over the whole period, the leg filters' call_ids first. */
static void calls_sql(struct qsql *q, const struct callq *cq, long long k)
{
	const struct qopts *o = cq->o;
	size_t pf = 0, pt = 0;
	if (k > 0)
		walk_cand(q, cq, k, &pf, &pt);
	if (cq->has_source)
		source_cte(q, k > 0);
	else if (k > 0)
		qsql_text(q, " ");
	qsql_text(q, "SELECT c.call_id, to_char(c.start, ");
	qsql_param(q, cq->tfmt);
	qsql_text(q, ") AS start, c.src, c.dst, c.direction, c.tenant, c.legs, c.total_billsec AS billsec, c.outcome");
	if (cq->has_mos)
		qsql_text(q, ", round(c.worst_mos::numeric, 2) AS worst_mos");
	qsql_text(q, cq->has_source ? ", c.node, coalesce(s.type, 'asterisk') AS source FROM " : ", c.node FROM ");
	qsql_text(q, k > 0 ? "cand c" : "call c");
	if (cq->has_source)
		source_join(q, "c.node");
	qsql_text(q, " WHERE");
	if (k > 0) {
		qsql_text(q, " c.call_id IN (");
		cand_legs(q, cq, pf, pt);
		qsql_text(q, ")");
	} else {
		call_where(q, cq, &pf, &pt);
		if (cq->e164 || o->dst_raw || o->trunk) {
			qsql_text(q, " AND c.call_id = ANY (ARRAY(SELECT DISTINCT l.call_id FROM cdr l WHERE");
			leg_window(q, cq, pf, pt);
			qsql_text(q, "))");
		}
	}
	qsql_text(q, " ORDER BY c.start, c.call_id");
}

int q_calls(PGconn *c, const struct qopts *o)
{
	char err[1024];
	int rc = EXIT_OK;
	char *e164 = NULL, *upper = NULL, *disp = NULL;
	struct qsql q;
	qsql_init(&q);

	if (o->dst) {
		e164 = e164_prefix(o->dst);
		if (!e164) {
			log_error("--dst \"%s\" is not a number prefix (digits, optional leading + and trailing *); "
				  "use --dst-raw for the dialled string as Asterisk wrote it", o->dst);
			rc = EXIT_USAGE;
			goto out;
		}
		upper = q_prefix_upper(e164);
	}
	if (o->disposition && !(disp = norm_disposition(o->disposition, o->legs))) {
		log_error("unknown --disposition \"%s\" (answered, busy, no_answer, failed, congestion)", o->disposition);
		rc = EXIT_USAGE;
		goto out;
	}
	int has_e164 = q_has_column(c, "cdr", "dst_e164", err, sizeof err);
	int has_mos = q_has_column(c, "call", "worst_mos", err, sizeof err);
	int has_source = q_has_column(c, "source_node", "type", err, sizeof err);
	if (has_e164 < 0 || has_mos < 0 || has_source < 0) {
		log_error("%s", err);
		rc = pgc_exit_for_value(c, err, EXIT_USAGE);
		goto out;
	}
	if (e164 && !has_e164) {
		log_error("--dst needs cdr.dst_e164 (schema migration 0007): run 'cdrflow-etl migrate'");
		rc = EXIT_CONFIG;
		goto out;
	}
	const char *tfmt = (o->fmt == QOUT_JSON || o->fmt == QOUT_JSON_ARRAY) ? "YYYY-MM-DD\"T\"HH24:MI:SS.MSTZH:TZM"
									       : "YYYY-MM-DD HH24:MI:SS";
	if (o->legs) {
		if (has_source)
			source_cte(&q, 0);
		qsql_text(&q, "SELECT to_char(l.calldate, ");
		qsql_param(&q, tfmt);
		qsql_text(&q, ") AS calldate, l.call_id, l.uniqueid, l.src, l.dst");
		if (has_e164)
			qsql_text(&q, ", l.dst_e164");
		qsql_text(&q, ", l.channel, l.dstchannel, l.disposition, l.duration, l.billsec, l.tenant");
		/* where the leg came from: its node and the node's kind (docs/sources.md) */
		qsql_text(&q, has_source ? ", l.node, coalesce(s.type, 'asterisk') AS source FROM cdr l" : ", l.node FROM cdr l");
		if (has_source)
			source_join(&q, "l.node");
		qsql_text(&q, " WHERE l.calldate >= ");
		size_t pf = qsql_param(&q, o->from_ts);
		qsql_text(&q, "::timestamptz AND l.calldate < ");
		qsql_param(&q, o->to_ts);
		qsql_text(&q, "::timestamptz");
		(void)pf;
		if (o->src)
			add_src(&q, "l.src", o->src);
		if (o->tenant) {
			qsql_text(&q, " AND l.tenant = ");
			qsql_param(&q, o->tenant);
		}
		if (disp) {
			qsql_text(&q, " AND l.disposition = ");
			qsql_param(&q, disp);
		}
		if (o->min_billsec) {
			qsql_text(&q, " AND l.billsec >= ");
			qsql_param(&q, o->min_billsec);
			qsql_text(&q, "::integer");
		}
		add_leg_filters(&q, o, e164, upper);
		qsql_text(&q, " ORDER BY l.calldate, l.uniqueid");
	} else {
		int leg_filters = e164 || o->dst_raw || o->trunk;
		struct callq cq = { o, disp, e164, upper, tfmt, has_mos, has_source };
		long long k = 0;
		if (leg_filters && o->limit > 0 &&
		    (rc = walk_size(c, &cq, &k)) != EXIT_OK)
			goto out;
		calls_sql(&q, &cq, k);
	}
	if (o->limit > 0) {
		char lim[32];
		snprintf(lim, sizeof lim, "%lld", o->limit);
		qsql_text(&q, " LIMIT ");
		qsql_param(&q, lim);
		qsql_text(&q, "::bigint");
	}
	if (o->explain) {
		rc = q_explain(c, &q, o);
		goto out;
	}
	unsigned long long rows = 0;
	rc = q_emit(c, &q, o, &rows);
	if (rc == EXIT_OK && o->limit > 0 && rows == (unsigned long long)o->limit && !o->quiet)
		fprintf(stderr, "cdrflow-query: stopped at --limit %lld rows (--limit 0 shows all)\n", o->limit);
	log_debug("%llu %s", rows, o->legs ? "legs" : "calls");
out:
	qsql_release(&q);
	free(e164);
	free(upper);
	free(disp);
	return rc;
}

#include "rdb.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "copytext.h"
#include "exitcode.h"
#include "pgconn.h"
#include "xalloc.h"

/* PostgreSQL type OIDs (pg_type.dat; stable across versions) */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_DATE 1082
#define OID_TIMESTAMP 1114
#define OID_TIMESTAMPTZ 1184
#define OID_INTERVAL 1186
#define OID_NUMERIC 1700

static int fail_result(PGconn *c, PGresult *r, const char *what, char *err, size_t errlen)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c);
	snprintf(err, errlen, "%s: %s%s%s", what, state ? state : "", state ? ": " : "", msg);
	pgc_one_line(err);
	return pgc_state_exit(c, state);
}

int rdb_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		int rc = fail_result(c, r, sql, err, errlen);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	return EXIT_OK;
}

int rdb_connect(const char *conninfo, const char *tz, PGconn **out, char *err, size_t errlen)
{
	*out = NULL;
	int refused;
	PGconn *c = pgc_connect(conninfo, "cdrflow-report", &refused, err, errlen);
	if (!c) /* a refused password is not "retry later" */
		return refused ? EXIT_NOPERM : EXIT_UNAVAILABLE;
	int rc = rdb_exec(c, "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 1", err, errlen);
	if (rc == EXIT_OK && pgc_reader_session(c, err, errlen) < 0)
		rc = pgc_error_exit(c, err);
	if (rc == EXIT_OK) {
		const char *pv[1] = { tz };
		PGresult *r = PQexecParams(c, "SELECT set_config('TimeZone', $1, false)", 1, NULL, pv, NULL, NULL, 0);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
			rc = fail_result(c, r, "time zone", err, errlen);
			if (rc == EXIT_DATAERR) {
				snprintf(err, errlen, "unknown time zone \"%s\" (use an IANA name such as Europe/Berlin, or UTC)", tz);
				rc = EXIT_USAGE;
			}
		}
		PQclear(r);
	}
	if (rc != EXIT_OK) {
		PQfinish(c);
		return rc;
	}
	*out = c;
	return EXIT_OK;
}

/* ------------------------------------------------------------- periods */

int rdb_period(PGconn *c, const char *from, const char *to, const char *tz, struct period *p, char *err, size_t errlen)
{
	int rc = period_resolve(c, from, to, tz, p, err, errlen);
	if (rc >= 0)
		return rc;
	return pgc_error_exit(c, err); /* err is "SQLSTATE: message" */
}

static Oid ptype_oid(enum tpl_ptype t)
{
	switch (t) {
	case TPL_P_TEXT: return OID_TEXT;
	case TPL_P_INT: return OID_INT8;
	case TPL_P_BOOL: return OID_BOOL;
	case TPL_P_DATE: return OID_DATE;
	case TPL_P_INTERVAL: return OID_INTERVAL;
	case TPL_P_TIMESTAMPTZ: return OID_TIMESTAMPTZ;
	}
	return 0;
}

int rdb_check_value(PGconn *c, enum tpl_ptype type, const char *value, char *err, size_t errlen)
{
	const Oid t = ptype_oid(type);
	const char *v[1] = { value };
	PGresult *r = PQexecParams(c, "SELECT $1", 1, &t, v, NULL, NULL, 0);
	int rc = EXIT_OK;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = fail_result(c, r, "parameter", err, errlen);
		if (rc == EXIT_DATAERR) {
			snprintf(err, errlen, "\"%s\" is not a valid %s", value, tpl_ptype_name(type));
			rc = EXIT_USAGE;
		}
	}
	PQclear(r);
	return rc;
}

int rdb_relation_exists(PGconn *c, const char *name, int *exists, char *err, size_t errlen)
{
	const char *v[1] = { name };
	*exists = 0;
	PGresult *r = PQexecParams(c, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, v, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		int rc = fail_result(c, r, "relation check", err, errlen);
		PQclear(r);
		return rc;
	}
	*exists = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return EXIT_OK;
}

/* ------------------------------------------------------------- typing */

static int ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

static int money_name(const char *name)
{
	return ends_with_ci(name, "cost") || ends_with_ci(name, "margin");
}

void rdb_auto_type(unsigned oid, int typmod, const char *name, struct rcol *out)
{
	out->name = name;
	out->label = NULL;
	out->scale = 0;
	switch (oid) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		out->type = money_name(name) ? RCOL_MONEY : RCOL_INT;
		out->scale = out->type == RCOL_MONEY ? 2 : 0;
		return;
	case OID_NUMERIC:
	case OID_FLOAT4:
	case OID_FLOAT8:
		if (money_name(name)) {
			out->type = RCOL_MONEY;
			out->scale = 2;
			return;
		}
		if (oid == OID_NUMERIC && typmod >= 4) { /* numeric(p, s): typmod = (p << 16 | s) + 4 */
			int s = (typmod - 4) & 0xffff;
			out->type = s == 0 ? RCOL_INT : RCOL_DECIMAL;
			out->scale = s > RCOL_MAX_SCALE ? RCOL_MAX_SCALE : s;
			return;
		}
		out->type = RCOL_DECIMAL;
		out->scale = 2;
		return;
	case OID_TIMESTAMP:
	case OID_TIMESTAMPTZ:
		out->type = RCOL_TIMESTAMP;
		return;
	default:
		out->type = RCOL_TEXT;
		return;
	}
}

/* A decimal text ("-12", "3.5", "1e6") rounded half away from zero to an
 * integer; 0, or -1 if it is not a finite number in int64 range. */
static int parse_round_i64_slow(const char *s, int64_t *out)
{
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return -1;
	if (strpbrk(p, "eE")) {
		char *end;
		double d = strtod(s, &end);
		if (*end || !isfinite(d) || fabs(d) >= 9.2e18)
			return -1;
		*out = llround(d);
		return 0;
	}
	uint64_t v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (isdigit((unsigned char)*p) && *p >= '5')
			v++;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p || v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* parse_round_i64_slow() for what COPY writes for an integer or a
 * numeric: [-]digits[.digits], up to 18 digits before the point (no
 * overflow, no exponent: no strpbrk over the text); the rest goes to it. */
static int parse_round_i64(const char *s, int64_t *out)
{
	const char *p = s + (*s == '-');
	int64_t v = 0;
	int k = 0;
	for (; *p >= '0' && *p <= '9' && k < 18; p++, k++)
		v = v * 10 + (*p - '0');
	if (k == 0 || (*p >= '0' && *p <= '9'))
		return parse_round_i64_slow(s, out);
	if (*p == '.') {
		const char *f = p + 1;
		if (*f >= '5' && *f <= '9')
			v++;
		while (*f >= '0' && *f <= '9')
			f++;
		if (*f)
			return parse_round_i64_slow(s, out);
	} else if (*p)
		return parse_round_i64_slow(s, out);
	*out = *s == '-' ? -v : v;
	return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff][+ZZ[:ZZ]]": the wall-clock time as
 * microseconds since 1970 (the zone suffix is the session's, dropped). */
static int digits_at(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_ts(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec;
	/* a check fails at a NUL before reading past it: no strlen */
	if (digits_at(s, 4, &y) < 0 || s[4] != '-' || digits_at(s + 5, 2, &mo) < 0 || s[7] != '-' ||
	    digits_at(s + 8, 2, &d) < 0 || s[10] != ' ' || digits_at(s + 11, 2, &h) < 0 || s[13] != ':' ||
	    digits_at(s + 14, 2, &mi) < 0 || s[16] != ':' || digits_at(s + 17, 2, &sec) < 0)
		return -1; /* also infinity, -infinity and years past 9999 */
	int64_t us = 0;
	const char *p = s + 19;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 6)
				us = us * 10 + (*p - '0');
		for (; digits < 6; digits++)
			us *= 10;
	}
	for (; *p; p++) /* the zone ("+00", "-04:30"), or an era: " BC" */
		if (p[0] == 'B' && p[1] == 'C')
			return -1;
	*out = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec) * INT64_C(1000000) + us;
	return 0;
}

/* ------------------------------------------------------------- streaming */

struct colconv {
	struct rcol col;
	unsigned oid;
	int is_bool;
};

/* One value's text (NULL for SQL NULL) as the report value of its column. */
static struct rval convert(const struct colconv *cc, const char *s)
{
	if (!s)
		return rval_null();
	int64_t i;
	switch (cc->col.type) {
	case RCOL_TEXT:
		if (cc->is_bool)
			return rval_text(!strcmp(s, "t") ? "true" : "false");
		return rval_text(s);
	case RCOL_INT:
	case RCOL_MONEY:
	case RCOL_DURATION:
		return parse_round_i64(s, &i) == 0 ? rval_int(i) : rval_null();
	case RCOL_DECIMAL:
	case RCOL_PERCENT: {
		char *end;
		double d = strtod(s, &end);
		return *end || !isfinite(d) ? rval_null() : rval_dbl(d);
	}
	case RCOL_TIMESTAMP:
		return parse_ts(s, &i) == 0 ? rval_int(i) : rval_null();
	}
	return rval_null();
}

static void drain(PGconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
}

static void cancel(PGconn *c)
{
	PGcancel *cn = PQgetCancel(c);
	char e[256];
	if (cn) {
		PQcancel(cn, e, sizeof e);
		PQfreeCancel(cn);
	}
}

/* Once rows flow, a wait for more first sleeps this long.  The server
 * sends a big COPY 8 KB at a time and waking for each send (200 k context
 * switches for a month's export) cost more CPU than the rows; meanwhile
 * the socket (212 KB by default) takes what the server writes: about
 * 60 KB at 600 k rows/s. */
#define COPY_NAP_NS 500000L

/* Wait until the connection's socket is readable. */
static int wait_input(PGconn *c, int flowing)
{
	if (flowing) {
		struct timespec nap = { 0, COPY_NAP_NS };
		(void)nanosleep(&nap, NULL); /* a signal only cuts it short */
	}
	struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	return n < 0 ? -1 : 0;
}

/* PQgetCopyData(c, row, 0), but reading what the socket holds before
 * waiting on it, and waiting as wait_input() does. */
static int next_row(PGconn *c, char **row, int flowing)
{
	for (;;) {
		int len = PQgetCopyData(c, row, 1);
		if (len != 0)
			return len;
		if (!PQconsumeInput(c))
			return -2;
		len = PQgetCopyData(c, row, 1);
		if (len != 0)
			return len;
		if (wait_input(c, flowing) < 0 || !PQconsumeInput(c))
			return -2;
	}
}

/* The columns of a result (or of a statement's description) typed by
 * their OIDs and the template's defs; the caller frees *cc and *cols. */
static int columns_of(const PGresult *r, const struct tpl_sql *sql, const struct tpl_column *defs, size_t ndefs,
		      struct colconv **ccp, struct rcol **colsp, size_t *ncolsp, char *err, size_t errlen)
{
	size_t ncols = (size_t)PQnfields(r);
	struct colconv *cc = xcalloc(ncols ? ncols : 1, sizeof *cc);
	struct rcol *cols = xcalloc(ncols ? ncols : 1, sizeof *cols);
	*ccp = cc;
	*colsp = cols;
	*ncolsp = ncols;
	for (size_t k = 0; k < ncols; k++) {
		const char *name = PQfname(r, (int)k);
		cc[k].oid = PQftype(r, (int)k);
		cc[k].is_bool = cc[k].oid == OID_BOOL;
		rdb_auto_type(cc[k].oid, PQfmod(r, (int)k), name, &cc[k].col);
		for (size_t d = 0; d < ndefs; d++) {
			if (strcmp(defs[d].name, name))
				continue;
			if (defs[d].label)
				cc[k].col.label = defs[d].label;
			if (defs[d].has_type) {
				cc[k].col.type = defs[d].type;
				cc[k].col.scale = defs[d].type == RCOL_MONEY || defs[d].type == RCOL_DECIMAL ? 2
						  : defs[d].type == RCOL_PERCENT		    ? 1
										    : 0;
			}
			if (defs[d].scale >= 0)
				cc[k].col.scale = defs[d].scale;
		}
		if (cc[k].is_bool)
			cc[k].col.type = RCOL_TEXT;
		cols[k] = cc[k].col;
	}
	for (size_t d = 0; d < ndefs; d++) {
		size_t k;
		for (k = 0; k < ncols; k++)
			if (!strcmp(defs[d].name, PQfname(r, (int)k)))
				break;
		if (k == ncols) {
			snprintf(err, errlen, "%s: columns: \"%s\" is not a column of the query", sql->where, defs[d].name);
			return EXIT_DATAERR;
		}
	}
	return EXIT_OK;
}

static const char *ptype_sql(enum tpl_ptype t)
{
	switch (t) {
	case TPL_P_TEXT: return "text";
	case TPL_P_INT: return "int8";
	case TPL_P_BOOL: return "bool";
	case TPL_P_DATE: return "date";
	case TPL_P_INTERVAL: return "interval";
	case TPL_P_TIMESTAMPTZ: return "timestamptz";
	}
	return "text";
}

/* "COPY (sql) TO STDOUT" with each placeholder a literal of its parameter's
 * type (COPY takes no parameters); NULL if libpq cannot quote a value. */
static char *copy_sql(PGconn *c, const struct tpl_sql *sql, const char *const *values, const enum tpl_ptype *types)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "COPY (");
	size_t at = 0;
	for (size_t i = 0; i < sql->nph && sql->ph[i].off < sql->body_len; i++) {
		const struct tpl_ph *ph = &sql->ph[i];
		buf_append(&b, sql->text + at, ph->off - at);
		at = ph->off + 1;
		while (sql->text[at] >= '0' && sql->text[at] <= '9')
			at++;
		const char *v = values[ph->param];
		char *lit = v ? PQescapeLiteral(c, v, strlen(v)) : NULL;
		if (v && !lit) {
			buf_release(&b);
			return NULL;
		}
		buf_printf(&b, "(%s::%s)", lit ? lit : "NULL", ptype_sql(types[ph->param]));
		PQfreemem(lit);
	}
	buf_append(&b, sql->text + at, sql->body_len - at);
	buf_puts(&b, "\n) TO STDOUT"); /* the newline ends a trailing -- comment */
	return buf_detach(&b, NULL);
}

/* Stream with COPY TO STDOUT, text format: the server's output functions,
 * as for an ordinary query, but rows come as one stream read in large
 * pieces and split in place, not one PGresult per row.  The columns come
 * from describing the statement first. */
int rdb_stream(PGconn *c, const struct tpl_sql *sql, const char *const *values, const enum tpl_ptype *types,
	       const struct tpl_column *defs, size_t ndefs, const struct rdb_cb *cb, unsigned long long *rows,
	       char *err, size_t errlen)
{
	Oid oids[64];
	if (rows)
		*rows = 0;
	if (sql->nparams > 64) {
		snprintf(err, errlen, "%s: more than 64 parameters", sql->where);
		return EXIT_DATAERR;
	}
	for (size_t i = 0; i < sql->nparams; i++)
		oids[i] = ptype_oid(types[i]);
	PGresult *r = PQprepare(c, "", sql->text, (int)sql->nparams, oids);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		int rc = fail_result(c, r, sql->where, err, errlen);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	PGresult *desc = PQdescribePrepared(c, ""); /* kept: it holds the column names */
	if (!desc || PQresultStatus(desc) != PGRES_COMMAND_OK) {
		int rc = fail_result(c, desc, sql->where, err, errlen);
		PQclear(desc);
		return rc;
	}
	struct colconv *cc = NULL;
	struct rcol *cols = NULL;
	size_t ncols = 0;
	int rc = columns_of(desc, sql, defs, ndefs, &cc, &cols, &ncols, err, errlen);
	char *text = rc == EXIT_OK ? copy_sql(c, sql, values, types) : NULL;
	if (rc == EXIT_OK && !text) {
		snprintf(err, errlen, "%s: cannot quote a parameter: %s", sql->where, PQerrorMessage(c));
		pgc_one_line(err);
		rc = EXIT_DATAERR; /* a value not valid in the client encoding */
	}
	r = NULL;
	if (rc == EXIT_OK) {
		r = PQexec(c, text);
		if (!r || PQresultStatus(r) != PGRES_COPY_OUT) {
			rc = fail_result(c, r, sql->where, err, errlen);
			PQclear(r);
			r = NULL;
			drain(c);
		}
	}
	free(text);
	PQclear(r);
	struct rval *vals = xcalloc(ncols ? ncols : 1, sizeof *vals);
	char **fields = xcalloc(ncols + 1, sizeof *fields);
	int copying = rc == EXIT_OK;
	if (rc == EXIT_OK && cb->begin(cb->arg, cols, ncols, err, errlen) < 0) {
		rc = EXIT_IOERR;
		cancel(c);
	}
	unsigned long long n = 0;
	char *row;
	int len;
	while (copying && (len = next_row(c, &row, n > 0)) > 0) {
		if (rc != EXIT_OK) { /* cancelled: throw the rest away */
			PQfreemem(row);
			continue;
		}
		long nf = copytext_split(row, (size_t)len, fields, ncols + 1);
		if (nf != (long)ncols) {
			snprintf(err, errlen, "%s: a COPY row of %ld fields, not %zu", sql->where, nf, ncols);
			rc = EXIT_SOFTWARE;
			cancel(c);
		} else {
			for (size_t k = 0; k < ncols; k++)
				vals[k] = convert(&cc[k], fields[k]);
			if (cb->row(cb->arg, vals, err, errlen) < 0) {
				rc = EXIT_IOERR;
				cancel(c);
			} else
				n++;
		}
		PQfreemem(row);
	}
	if (copying && len == -2 && rc == EXIT_OK) {
		snprintf(err, errlen, "%s: %s", sql->where, PQerrorMessage(c));
		pgc_one_line(err);
		rc = PQstatus(c) != CONNECTION_OK ? EXIT_UNAVAILABLE : EXIT_SOFTWARE;
	}
	while (copying && (r = PQgetResult(c)) != NULL) { /* how the COPY ended */
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == EXIT_OK)
			rc = fail_result(c, r, sql->where, err, errlen);
		PQclear(r);
	}
	free(fields);
	free(vals);
	free(cc);
	free(cols);
	PQclear(desc);
	if (rows)
		*rows = n;
	if (rc == EXIT_OK && PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "%s: connection lost: %s", sql->where, PQerrorMessage(c));
		pgc_one_line(err);
		rc = EXIT_UNAVAILABLE;
	}
	return rc;
}

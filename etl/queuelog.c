#include "queuelog.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copyfmt.h"
#include "exitcode.h"
#include "fsx.h"
#include "pgconn.h"
#include "xalloc.h"

#define QLOG_MAX_FIELDS 64 /* Asterisk writes at most ~10; more is not queue_log */
/* 9999-12-31 23:59:59 UTC: what a timestamptz prints with four year digits */
#define QLOG_MAX_TIME INT64_C(253402300799)

struct field {
	const char *p;
	size_t n;
};

/* PostgreSQL's int4 input: blanks, a sign, digits, blanks; in range. */
static int pg_int4(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	size_t d0 = i;
	int64_t v = 0;
	while (i < n && isdigit((unsigned char)s[i])) {
		v = v * 10 + (s[i] - '0');
		if (v > (int64_t)INT_MAX + 1)
			return 0;
		i++;
	}
	if (i == d0)
		return 0;
	if (v > INT_MAX && s[d0 - 1] != '-')
		return 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	return i == n;
}

/* The data fields (1-based, as the SQL reads them) that are cast to
 * integer for an event; 0 = none, negative = counted from the end
 * (-2: data[cardinality - 2]). */
static const struct {
	const char *event;
	int idx[2];
} int_fields[] = {
	{ "ENTERQUEUE", { 3, 0 } },	  { "ABANDON", { 1, 3 } },	  { "EXITWITHTIMEOUT", { 1, 3 } },
	{ "EXITEMPTY", { 1, 3 } },	  { "WITHDRAW", { 1, 3 } },	  { "EXITWITHKEY", { 2, 4 } },
	{ "CONNECT", { 1, 3 } },	  { "COMPLETECALLER", { 1, 2 } }, { "COMPLETEAGENT", { 1, 2 } },
	{ "RINGNOANSWER", { 1, 0 } },	  { "RINGCANCELED", { 1, 0 } },	  { "BLINDTRANSFER", { -2, -1 } },
	{ "ATTENDEDTRANSFER", { -2, -1 } },
};

static int check_numbers(const struct field *f, size_t nf, const char *name, uint64_t line, char *err, size_t errlen)
{
	const struct field *ev = &f[4];
	const struct field *data = f + 5;
	size_t nd = nf - 5;
	for (size_t e = 0; e < sizeof int_fields / sizeof int_fields[0]; e++) {
		if (strlen(int_fields[e].event) != ev->n || memcmp(int_fields[e].event, ev->p, ev->n))
			continue;
		for (int j = 0; j < 2; j++) {
			int k = int_fields[e].idx[j];
			long pos = k < 0 ? (long)nd + k : k; /* 1-based; -2: data[cardinality - 2] */
			if (!k || pos < 1 || (size_t)pos > nd)
				continue; /* absent: NULL in SQL */
			const struct field *x = &data[pos - 1];
			if (x->n && !pg_int4(x->p, x->n)) {
				snprintf(err, errlen, "%s:%llu: %.*s field %ld \"%.*s\" is not a number", name,
					 (unsigned long long)line, (int)ev->n, ev->p, pos + 5, (int)(x->n > 40 ? 40 : x->n), x->p);
				return -1;
			}
		}
		break;
	}
	return 0;
}

/* The text[] literal of data fields: {"a","b\"c"}, COPY-escaped by copy_text. */
static void data_literal(struct buf *lit, const struct field *d, size_t nd)
{
	buf_puts(lit, "{");
	for (size_t i = 0; i < nd; i++) {
		buf_puts(lit, i ? ",\"" : "\"");
		for (size_t j = 0; j < d[i].n; j++) {
			char c = d[i].p[j];
			if (c == '"' || c == '\\')
				buf_append(lit, "\\", 1);
			buf_append(lit, &c, 1);
		}
		buf_puts(lit, "\"");
	}
	buf_puts(lit, "}");
}

int qlog_parse(const char *name, const char *text, size_t len, struct buf *out, struct qlog_stats *st, char *err,
	       size_t errlen)
{
	memset(st, 0, sizeof *st);
	struct buf lit;
	buf_init(&lit, 0);
	size_t pos = 0;
	int rc = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t n = end - pos;
		const char *s = text + pos;
		/* the SQL splits on \r?\n: a \r before the newline is not data */
		if (nl && n && s[n - 1] == '\r')
			n--;
		pos = nl ? end + 1 : len;
		st->lines++;
		uint64_t line = st->lines;
		/* the fields, split at every '|' */
		struct field f[QLOG_MAX_FIELDS];
		size_t nf = 0, a = 0;
		int too_many = 0;
		for (size_t i = 0; i <= n; i++) {
			if (i == n || s[i] == '|') {
				if (nf == QLOG_MAX_FIELDS) {
					too_many = 1;
					break;
				}
				f[nf].p = s + a;
				f[nf].n = i - a;
				nf++;
				a = i + 1;
			}
		}
		/* ^[0-9]+\|[^|]*\|[^|]*\|[^|]*\|[^|]+ : the SQL's test of an event line */
		if (nf < 5 || !f[0].n || strspn(f[0].p, "0123456789") < f[0].n || !f[4].n) {
			st->skipped++;
			continue;
		}
		if (too_many) {
			snprintf(err, errlen, "%s:%llu: more than %d fields", name, (unsigned long long)line, QLOG_MAX_FIELDS);
			rc = -1;
			break;
		}
		int64_t t = 0;
		for (size_t i = 0; i < f[0].n && t <= QLOG_MAX_TIME; i++)
			t = t * 10 + (f[0].p[i] - '0');
		if (t > QLOG_MAX_TIME) {
			snprintf(err, errlen, "%s:%llu: time \"%.*s\" is out of range", name, (unsigned long long)line,
				 (int)(f[0].n > 30 ? 30 : f[0].n), f[0].p);
			rc = -1;
			break;
		}
		if (check_numbers(f, nf, name, line, err, errlen) < 0) {
			rc = -1;
			break;
		}
		copy_int(out, (int64_t)line, '\t');
		copy_time_us(out, (uint64_t)t * 1000000u, '\t');
		for (size_t i = 1; i < 5; i++)
			copy_text(out, f[i].p, f[i].n, '\t');
		lit.len = 0;
		data_literal(&lit, f + 5, nf - 5);
		copy_text(out, lit.data, lit.len, '\n');
		st->rows++;
	}
	buf_release(&lit);
	return rc;
}

static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t cap = sb.st_size > 0 ? (size_t)sb.st_size : 4096, n = 0;
	char *p = xmalloc(cap + 1);
	for (;;) {
		ssize_t k = read_full(fd, p + n, cap - n);
		if (k < 0) {
			snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
			free(p);
			close(fd);
			return -1;
		}
		n += (size_t)k;
		if (n < cap)
			break; /* end of file */
		p = xrealloc(p, (cap *= 2) + 1);
	}
	close(fd);
	p[n] = '\0';
	*data = p;
	*len = n;
	return 0;
}

int qlog_import(PGconn *c, const char *path, const char *node, struct qlog_stats *st, uint64_t *new_lines, char *err,
		size_t errlen)
{
	char *text;
	size_t len;
	*new_lines = 0;
	if (read_file(path, &text, &len, err, errlen) < 0)
		return EXIT_NOINPUT;
	struct buf rows;
	buf_init(&rows, 0);
	int prc = qlog_parse(path, text, len, &rows, st, err, errlen);
	free(text);
	if (prc < 0) {
		buf_release(&rows);
		return EXIT_DATAERR;
	}
	int rc = EXIT_OK;
	char ignored[64];
	if (pgc_exec(c, "BEGIN", err, errlen) < 0 || pgc_exec(c, "SELECT cdrflow_queue_log_in_table()", err, errlen) < 0) {
		rc = pgc_error_exit(c, err);
		goto out;
	}
	PGresult *r = PQexec(c, "COPY queue_log_in (line_no, time, callid, queuename, agent, event, data) FROM STDIN");
	if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(err, errlen, "cannot start COPY: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		rc = pgc_error_exit(c, err);
		goto rollback;
	}
	PQclear(r);
	int ok = (!rows.len || PQputCopyData(c, rows.data, (int)rows.len) == 1) && PQputCopyEnd(c, NULL) == 1;
	char copy_err[512] = "";
	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			const char *stt = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			snprintf(copy_err, sizeof copy_err, "%s%s%s", stt ? stt : "", stt ? ": " : "", PQresultErrorMessage(r));
			ok = 0;
		}
		PQclear(r);
	}
	if (!ok) {
		snprintf(err, errlen, "%s: COPY failed: %s", path, *copy_err ? copy_err : PQerrorMessage(c));
		rc = pgc_error_exit(c, copy_err);
		goto rollback;
	}
	const char *params[1] = { node };
	r = PQexecParams(c, "SELECT cdrflow_queue_log_apply($1)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *stt = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(err, errlen, "%s: %s%s%s", path, stt ? stt : "", stt ? ": " : "", PQresultErrorMessage(r));
		PQclear(r);
		rc = pgc_error_exit(c, err + strlen(path) + 2);
		goto rollback;
	}
	*new_lines = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (pgc_exec(c, "COMMIT", err, errlen) < 0) {
		rc = pgc_error_exit(c, err);
		goto out;
	}
	goto out;
rollback:
	pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
out:
	buf_release(&rows);
	return rc;
}

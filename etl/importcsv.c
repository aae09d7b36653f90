#include "importcsv.h"

#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cdrengine.h"
#include "copyfmt.h"
#include "exitcode.h"
#include "pgconn.h"
#include "strparse.h"
#include "xalloc.h"

#define MAX_FIELDS 32
#define FLUSH_BYTES (4u << 20)

/* Column positions of one Master.csv layout (-1 = absent). */
struct layout {
	int uniqueid, userfield, newcols; /* newcols: peeraccount, linkedid, sequence follow */
	int nfields;
};

struct scan {
	/* the current row */
	char *field[MAX_FIELDS];
	size_t len[MAX_FIELDS];
	int isnull[MAX_FIELDS];
	int nf;
	uint64_t line;
	/* pass 1 */
	int first_nf;
	int months[256];
	size_t nmonths;
	/* pass 2 */
	int pass;
	const struct layout *lay;
	const char *node;
	struct buf out;
	PGconn *conn;
	uint64_t rows;
	int failed;
	char *err;
	size_t errlen;
};

static void on_field(void *s, size_t len, void *data)
{
	struct scan *sc = data;
	if (sc->nf < MAX_FIELDS) {
		sc->field[sc->nf] = xstrndup(s ? s : "", s ? len : 0);
		sc->len[sc->nf] = s ? len : 0;
		sc->isnull[sc->nf] = s == NULL;
	}
	sc->nf++;
}

static void clear_row(struct scan *sc)
{
	for (int i = 0; i < sc->nf && i < MAX_FIELDS; i++)
		free(sc->field[i]);
	sc->nf = 0;
}

static int fail(struct scan *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct scan *sc, const char *fmt, ...)
{
	if (sc->failed)
		return -1;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(sc->err, sc->errlen, "line %" PRIu64 ": %s", sc->line, msg);
	sc->failed = 1;
	return -1;
}

/* "2026-11-21 19:15:13" -> YYYYMM, or -1. */
static int month_of(const char *s, size_t n)
{
	if (n < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ')
		return -1;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0');
	return m >= 1 && m <= 12 ? y * 100 + m : -1;
}

static void add_text(struct scan *sc, int i, char sep)
{
	if (i < 0)
		copy_text(&sc->out, "", 0, sep);
	else
		copy_text(&sc->out, sc->field[i], sc->len[i], sep);
}

static void on_row(int c, void *data)
{
	(void)c;
	struct scan *sc = data;
	sc->line++;
	if (sc->failed) {
		clear_row(sc);
		return;
	}
	if (sc->nf == 1 && sc->len[0] == 0) { /* blank line */
		clear_row(sc);
		return;
	}
	if (sc->pass == 1) {
		if (!sc->first_nf)
			sc->first_nf = sc->nf;
		if (sc->nf != sc->first_nf)
			fail(sc, "%d fields where the first row has %d", sc->nf, sc->first_nf);
		else if (sc->nf < 16 || sc->nf > 21)
			fail(sc, "%d fields: not an Asterisk Master.csv row (16 to 21 fields)", sc->nf);
		else {
			int m = month_of(sc->field[9], sc->len[9]);
			if (m < 0)
				fail(sc, "start \"%s\" is not a \"YYYY-MM-DD HH:MM:SS\" date", sc->field[9]);
			else {
				size_t k;
				for (k = 0; k < sc->nmonths && sc->months[k] != m; k++)
					;
				if (k == sc->nmonths && sc->nmonths < 256)
					sc->months[sc->nmonths++] = m;
			}
			int64_t v;
			char why[64];
			if (!sc->failed && (parse_int_range(sc->field[12], 0, INT32_MAX, &v, why, sizeof why) < 0 ||
					    parse_int_range(sc->field[13], 0, INT32_MAX, &v, why, sizeof why) < 0))
				fail(sc, "duration/billsec \"%s\"/\"%s\" are not whole seconds", sc->field[12], sc->field[13]);
			if (!sc->failed && month_of(sc->field[11], sc->len[11]) < 0)
				fail(sc, "end \"%s\" is not a date", sc->field[11]);
			if (!sc->failed && !sc->isnull[10] && sc->len[10] && month_of(sc->field[10], sc->len[10]) < 0)
				fail(sc, "answer \"%s\" is not a date", sc->field[10]);
		}
		clear_row(sc);
		return;
	}
	/* pass 2: one cdr row in COPY text format */
	const struct layout *L = sc->lay;
	int base = 16;
	int uid = L->uniqueid ? base++ : -1;
	int ufield = L->userfield ? base++ : -1;
	int peer = L->newcols ? base : -1, linked = L->newcols ? base + 1 : -1, seq = L->newcols ? base + 2 : -1;
	struct buf *o = &sc->out;
	copy_text(o, sc->field[9], sc->len[9], '\t');                 /* calldate = start */
	if (sc->isnull[10] || sc->len[10] == 0)
		copy_null(o, '\t');
	else
		copy_text(o, sc->field[10], sc->len[10], '\t');        /* answer */
	copy_text(o, sc->field[11], sc->len[11], '\t');              /* end */
	add_text(sc, 4, '\t');                                        /* clid */
	add_text(sc, 1, '\t');                                        /* src */
	add_text(sc, 2, '\t');                                        /* dst */
	add_text(sc, 3, '\t');                                        /* dcontext */
	add_text(sc, 5, '\t');                                        /* channel */
	add_text(sc, 6, '\t');                                        /* dstchannel */
	add_text(sc, 7, '\t');                                        /* lastapp */
	add_text(sc, 8, '\t');                                        /* lastdata */
	add_text(sc, 12, '\t');                                       /* duration */
	add_text(sc, 13, '\t');                                       /* billsec */
	add_text(sc, 14, '\t');                                       /* disposition */
	copy_int(o, cdr_amaflags_number(sc->field[15], strlen(sc->field[15])), '\t'); /* amaflags */
	add_text(sc, 0, '\t');                                        /* accountcode */
	add_text(sc, peer, '\t');                                     /* peeraccount */
	add_text(sc, uid, '\t');                                      /* uniqueid */
	add_text(sc, linked >= 0 ? linked : uid, '\t');               /* linkedid */
	add_text(sc, ufield, '\t');                                   /* userfield */
	if (seq >= 0 && sc->len[seq])
		add_text(sc, seq, '\t');                              /* sequence */
	else
		copy_null(o, '\t');
	copy_text(o, sc->node, strlen(sc->node), '\t');
	buf_append(o, "t\n", 2);                                      /* imported */
	sc->rows++;
	clear_row(sc);
	if (sc->conn && o->len >= FLUSH_BYTES) {
		if (PQputCopyData(sc->conn, o->data, (int)o->len) != 1)
			fail(sc, "COPY failed: %s", PQerrorMessage(sc->conn));
		buf_reset(o);
	}
}

/* Run the parser over the whole file; 0 or -1 (sc->err). */
static int parse_file(FILE *f, struct scan *sc, EVP_MD_CTX *md)
{
	struct csv_parser p;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) != 0)
		return fail(sc, "cannot start the CSV parser");
	char buf[1 << 16];
	size_t n;
	sc->line = 0;
	rewind(f);
	while (!sc->failed && (n = fread(buf, 1, sizeof buf, f)) > 0) {
		if (md)
			EVP_DigestUpdate(md, buf, n);
		if (csv_parse(&p, buf, n, on_field, on_row, sc) != n)
			fail(sc, "CSV syntax error: %s", csv_strerror(csv_error(&p)));
	}
	if (!sc->failed && ferror(f))
		fail(sc, "read error: %s", strerror(errno));
	if (!sc->failed && csv_fini(&p, on_field, on_row, sc) != 0)
		fail(sc, "CSV syntax error at the end of the file: %s", csv_strerror(csv_error(&p)));
	clear_row(sc);
	csv_free(&p);
	return sc->failed ? -1 : 0;
}

static int pick_layout(int nf, const struct import_opts *o, struct layout *L)
{
	static const int prefs[4][2] = { { 1, 1 }, { 1, 0 }, { 0, 1 }, { 0, 0 } };
	for (int i = 0; i < 4; i++) {
		int u = prefs[i][0], f = prefs[i][1];
		if ((o->uniqueid >= 0 && u != o->uniqueid) || (o->userfield >= 0 && f != o->userfield))
			continue;
		for (int nc = 0; nc <= 1; nc++) {
			if (16 + u + f + 3 * nc == nf) {
				*L = (struct layout){ u, f, nc, nf };
				return 0;
			}
		}
	}
	return -1;
}

static int sql_fail(PGconn *c, char *err, size_t errlen, const char *what)
{
	char why[512];
	snprintf(why, sizeof why, "%s", err);
	snprintf(err, errlen, "%s: %s", what, why);
	char ignored[64];
	pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	return pgc_error_exit(c, why);
}

int import_csv_transform(FILE *f, const struct import_opts *o, struct buf *out, uint64_t *rows, char *err,
			 size_t errlen)
{
	*rows = 0;
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	sc.err = err;
	sc.errlen = errlen;
	sc.node = o->node;
	sc.pass = 1;
	buf_init(&sc.out, 0);
	struct layout L;
	int rc = EXIT_OK;
	if (parse_file(f, &sc, NULL) < 0) {
		rc = EXIT_DATAERR;
	} else if (!sc.first_nf) {
		snprintf(err, errlen, "no rows");
		rc = EXIT_DATAERR;
	} else if (pick_layout(sc.first_nf, o, &L) < 0) {
		snprintf(err, errlen, "rows of %d fields do not match the given --no-uniqueid/--no-userfield", sc.first_nf);
		rc = EXIT_DATAERR;
	} else {
		sc.pass = 2;
		sc.lay = &L;
		if (parse_file(f, &sc, NULL) < 0)
			rc = EXIT_DATAERR;
		else if (buf_append(out, sc.out.data, sc.out.len) < 0)
			rc = EXIT_SOFTWARE;
		*rows = sc.rows;
	}
	buf_release(&sc.out);
	return rc;
}

int import_csv(PGconn *c, const char *path, const struct import_opts *o, uint64_t *rows, char *err, size_t errlen)
{
	*rows = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	sc.err = err;
	sc.errlen = errlen;
	sc.node = o->node;
	sc.conn = c;
	buf_init(&sc.out, 0);
	int rc = EXIT_OK;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	struct layout L;

	/* pass 1: validate every row, find the layout and the months, hash */
	sc.pass = 1;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || parse_file(f, &sc, md) < 0) {
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: %s", path, md ? why : "no SHA-256");
		rc = EXIT_DATAERR;
		goto out;
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	for (unsigned i = 0; i < dlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (!sc.first_nf) {
		snprintf(err, errlen, "%s: no rows", path);
		rc = EXIT_DATAERR;
		goto out;
	}
	if (pick_layout(sc.first_nf, o, &L) < 0) {
		snprintf(err, errlen, "%s: rows of %d fields do not match the given --no-uniqueid/--no-userfield", path,
			 sc.first_nf);
		rc = EXIT_DATAERR;
		goto out;
	}

	/* pass 2: one transaction: guard, partitions, COPY, record */
	char sql[1024];
	char *v = NULL;
	char *tz = PQescapeLiteral(c, o->timezone, strlen(o->timezone));
	snprintf(sql, sizeof sql, "SET TIME ZONE %s", tz);
	PQfreemem(tz);
	if (pgc_exec(c, "BEGIN", err, errlen) < 0) {
		rc = sql_fail(c, err, errlen, "cannot start the import");
		goto out;
	}
	if (pgc_exec(c, sql, err, errlen) < 0) {
		if (!strncmp(err, "22023", 5)) { /* invalid_parameter_value */
			snprintf(err, errlen, "unknown --timezone \"%s\" (use a zone name such as Europe/Amsterdam, or UTC)",
				 o->timezone);
			char ignored[64];
			pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
			rc = EXIT_USAGE;
		} else {
			rc = sql_fail(c, err, errlen, "cannot set the time zone");
		}
		goto out;
	}
	snprintf(sql, sizeof sql, "SELECT filename || ' at ' || imported_at FROM cdr_import WHERE sha256 = '%s'", hex);
	if (pgc_value(c, sql, &v, err, errlen) < 0) {
		rc = sql_fail(c, err, errlen, "cannot check earlier imports");
		goto out;
	}
	if (v && !o->force) {
		snprintf(err, errlen, "%s: this exact file was already imported (%s); use --force to load it again", path, v);
		free(v);
		char ignored[64];
		pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
		rc = EXIT_DATAERR;
		goto out;
	}
	free(v);
	for (size_t i = 0; i < sc.nmonths; i++) {
		snprintf(sql, sizeof sql, "SELECT cdrflow_ensure_month('%04d-%02d-15 00:00:00+00')", sc.months[i] / 100,
			 sc.months[i] % 100);
		if (pgc_exec(c, sql, err, errlen) < 0) {
			rc = sql_fail(c, err, errlen, "cannot create partitions");
			goto out;
		}
	}
	PGresult *r = PQexec(c, "COPY cdr (calldate, answer, \"end\", clid, src, dst, dcontext, channel, dstchannel, "
				"lastapp, lastdata, duration, billsec, disposition, amaflags, accountcode, peeraccount, "
				"uniqueid, linkedid, userfield, sequence, node, imported) FROM STDIN");
	if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(err, errlen, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		rc = sql_fail(c, err, errlen, "cannot start COPY");
		goto out;
	}
	PQclear(r);
	sc.pass = 2;
	sc.lay = &L;
	sc.line = 0;
	int perr = parse_file(f, &sc, NULL);
	if (perr == 0 && sc.out.len && PQputCopyData(c, sc.out.data, (int)sc.out.len) != 1)
		perr = fail(&sc, "COPY failed: %s", PQerrorMessage(c));
	PQputCopyEnd(c, perr ? "cdrflow-etl: input error" : NULL);
	int copy_ok = 1;
	char copy_err[512] = "";
	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			copy_ok = 0;
			const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			snprintf(copy_err, sizeof copy_err, "%s%s%s", st ? st : "", st ? ": " : "", PQresultErrorMessage(r));
		}
		PQclear(r);
	}
	if (perr || !copy_ok) {
		if (!perr)
			snprintf(err, errlen, "%s", copy_err);
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: %s", path, why);
		char ignored[64];
		pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
		rc = perr ? EXIT_DATAERR : pgc_error_exit(c, copy_err);
		goto out;
	}
	char *fn = PQescapeLiteral(c, path, strlen(path));
	char *nd = PQescapeLiteral(c, o->node, strlen(o->node));
	snprintf(sql, sizeof sql,
		 "INSERT INTO cdr_import (sha256, filename, node, rows, layout) VALUES ('%s', %s, %s, %" PRIu64
		 ", 'uniqueid=%s userfield=%s newcdrcolumns=%s') ON CONFLICT (sha256) DO UPDATE SET imported_at = excluded.imported_at, "
		 "rows = cdr_import.rows + excluded.rows",
		 hex, fn, nd, sc.rows, L.uniqueid ? "yes" : "no", L.userfield ? "yes" : "no", L.newcols ? "yes" : "no");
	PQfreemem(fn);
	PQfreemem(nd);
	if (pgc_exec(c, sql, err, errlen) < 0 || pgc_exec(c, "COMMIT", err, errlen) < 0) {
		rc = sql_fail(c, err, errlen, "cannot commit the import");
		goto out;
	}
	*rows = sc.rows;
out:
	EVP_MD_CTX_free(md);
	buf_release(&sc.out);
	fclose(f);
	return rc;
}

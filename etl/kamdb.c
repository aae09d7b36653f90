/*
 * kamdb.c - a Kamailio database on PostgreSQL or MySQL/MariaDB (kamdb.h).
 */
#include "kamdb.h"

#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pgconn.h"
#include "secmem.h"
#include "xalloc.h"

struct kamdb {
	int type;
	PGconn *pg;
	MYSQL *my;
};

/* a libpq conninfo value, single-quoted */
static void conn_value(struct buf *b, const char *key, const char *v)
{
	buf_puts(b, key);
	buf_puts(b, "='");
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_puts(b, "' ");
}

static struct kamdb *open_pg(const struct source_config *s, const char *password, char *err, size_t errlen)
{
	const struct kam_source *k = &s->kamailio;
	struct buf ci;
	buf_init(&ci, 256);
	if (*k->host)
		conn_value(&ci, "host", k->host);
	if (k->port) {
		char port[16];
		snprintf(port, sizeof port, "%d", (int)k->port);
		conn_value(&ci, "port", port);
	}
	conn_value(&ci, "dbname", k->database);
	conn_value(&ci, "user", k->user);
	if (password)
		conn_value(&ci, "password", password);
	if (*k->options)
		buf_puts(&ci, k->options);
	char app[96];
	snprintf(app, sizeof app, "cdrflow-etl %s", s->name);
	char why[512];
	PGconn *c = pgc_connect(ci.data, app, NULL, why, sizeof why);
	explicit_bzero(ci.data, ci.len);
	buf_release(&ci);
	if (!c) {
		snprintf(err, errlen, "source %s: PostgreSQL %s/%s: %s", s->name, k->host, k->database, why);
		return NULL;
	}
	struct kamdb *db = xcalloc(1, sizeof *db);
	db->type = KAM_DB_POSTGRESQL;
	db->pg = c;
	return db;
}

static struct kamdb *open_my(const struct source_config *s, const char *password, char *err, size_t errlen)
{
	const struct kam_source *k = &s->kamailio;
	MYSQL *m = mysql_init(NULL);
	if (!m) {
		snprintf(err, errlen, "source %s: mysql_init failed (out of memory)", s->name);
		return NULL;
	}
	unsigned timeout = 10;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(m, *k->socket ? NULL : k->host, k->user, password ? password : "", k->database,
				(unsigned)k->port, *k->socket ? k->socket : NULL, 0)) {
		snprintf(err, errlen, "source %s: MySQL %s/%s: %s", s->name, *k->socket ? k->socket : k->host,
			 k->database, mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	struct kamdb *db = xcalloc(1, sizeof *db);
	db->type = KAM_DB_MYSQL;
	db->my = m;
	return db;
}

struct kamdb *kamdb_open(const struct source_config *s, char *err, size_t errlen)
{
	int none = 0;
	char *password = source_secret(s->name, s->kamailio.secret_env, s->kamailio.secret_file, &none, err, errlen);
	if (!password && !none)
		return NULL;
	struct kamdb *db = s->kamailio.db_type == KAM_DB_MYSQL ? open_my(s, password, err, errlen)
							       : open_pg(s, password, err, errlen);
	secmem_free(password);
	return db;
}

void kamdb_close(struct kamdb *db)
{
	if (!db)
		return;
	if (db->pg)
		PQfinish(db->pg);
	if (db->my)
		mysql_close(db->my);
	free(db);
}

void kamdb_ident(const struct kamdb *db, const char *name, char *out, size_t n)
{
	char q = db->type == KAM_DB_MYSQL ? '`' : '"';
	snprintf(out, n, "%c%s%c", q, name, q);
}

static long query_pg(struct kamdb *db, const char *sql, kamdb_row_fn fn, void *arg, char *err, size_t errlen)
{
	PGresult *r = PQexec(db->pg, sql);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_result_error(r, db->pg, err, errlen);
		PQclear(r);
		return -1;
	}
	int rows = PQntuples(r), cols = PQnfields(r);
	const char **v = xcalloc((size_t)cols + 1, sizeof *v);
	long n = 0;
	for (int i = 0; i < rows; i++) {
		for (int j = 0; j < cols; j++)
			v[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
		n++;
		if (fn(arg, v, cols))
			break;
	}
	free(v);
	PQclear(r);
	return n;
}

static long query_my(struct kamdb *db, const char *sql, kamdb_row_fn fn, void *arg, char *err, size_t errlen)
{
	if (mysql_query(db->my, sql) != 0) {
		snprintf(err, errlen, "%s: %s", mysql_sqlstate(db->my), mysql_error(db->my));
		return -1;
	}
	MYSQL_RES *res = mysql_store_result(db->my);
	if (!res) {
		snprintf(err, errlen, "%s: %s", mysql_sqlstate(db->my), mysql_error(db->my));
		return -1;
	}
	int cols = (int)mysql_num_fields(res);
	MYSQL_ROW row;
	long n = 0;
	while ((row = mysql_fetch_row(res))) {
		n++;
		if (fn(arg, (const char *const *)row, cols))
			break;
	}
	mysql_free_result(res);
	return n;
}

long kamdb_query(struct kamdb *db, const char *sql, kamdb_row_fn fn, void *arg, char *err, size_t errlen)
{
	return db->type == KAM_DB_MYSQL ? query_my(db, sql, fn, arg, err, errlen) : query_pg(db, sql, fn, arg, err, errlen);
}

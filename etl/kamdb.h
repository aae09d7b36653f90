/*
 * kamdb.h - read access to a Kamailio database, PostgreSQL (libpq) or
 * MySQL/MariaDB (libmariadb): connect with the source's settings (the
 * password from secret_env/secret_file only) and stream the text values of
 * a query's rows.  The loader (kamload.c) builds the SQL; identifiers come
 * from the configuration, checked as plain names (sources_check).
 */
#ifndef CDRFLOW_KAMDB_H
#define CDRFLOW_KAMDB_H

#include <stddef.h>

#include "sources.h"

struct kamdb;

/* One row: n text values, NULL for SQL NULL.  Return non-zero to stop. */
typedef int (*kamdb_row_fn)(void *arg, const char *const *v, int n);

struct kamdb *kamdb_open(const struct source_config *s, char *err, size_t errlen);
void kamdb_close(struct kamdb *db);
/* Quote a (plain) identifier for this database into out. */
void kamdb_ident(const struct kamdb *db, const char *name, char *out, size_t n);
/* Run sql; fn for each row in order.  Rows read, or -1 with err. */
long kamdb_query(struct kamdb *db, const char *sql, kamdb_row_fn fn, void *arg, char *err, size_t errlen);

#endif

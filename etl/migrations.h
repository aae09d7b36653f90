/*
 * migrations.h - the warehouse schema migrations compiled into cdrflow-etl
 * (generated from sql/NNNN_description.sql by scripts/embed-sql.sh).
 */
#ifndef CDRFLOW_MIGRATIONS_H
#define CDRFLOW_MIGRATIONS_H

struct migration {
	int version;
	const char *description;
	const char *sql;
};

/* In version order, ending with { 0, NULL, NULL }. */
extern const struct migration migrations[];

#endif

#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "lock.h"
#include "log.h"
#include "migrations.h"
#include "pgconn.h"

/* pg_advisory_lock key: "cdrflow" + 1, arbitrary but fixed */
#define MIGRATE_LOCK "7310583151"

int migrate_latest(void)
{
	int v = 0;
	for (const struct migration *m = migrations; m->sql; m++)
		v = m->version;
	return v;
}

int migrate_current(PGconn *c, char *err, size_t errlen)
{
	char *v = NULL;
	if (pgc_value(c, "SELECT to_regclass('schema_version') IS NOT NULL", &v, err, errlen) < 0)
		return -1;
	int exists = v && !strcmp(v, "t");
	free(v);
	if (!exists)
		return 0;
	if (pgc_value(c, "SELECT coalesce(max(version), 0) FROM schema_version", &v, err, errlen) < 0)
		return -1;
	int n = v ? (int)strtol(v, NULL, 10) : 0;
	free(v);
	return n;
}

static int fail(PGconn *c, char *err, size_t errlen, const char *what)
{
	char why[512];
	snprintf(why, sizeof why, "%s", err);
	snprintf(err, errlen, "%s: %s%s", what, why,
		 strncmp(why, "55P03", 5) ? "" : " (a lock wait passed lock_timeout: a long transaction holds a lock on "
						   "a table this changes, see pg_stat_activity; try again later)");
	return pgc_error_exit(c, why);
}

/* 1 when the warehouse is distributed by Citus (cdr is a distributed
 * table: cdrflow_distribute ran), 0 when not, -1 on error. */
static int schema_distributed(PGconn *c, char *err, size_t errlen)
{
	char *v = NULL;
	if (pgc_value(c, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AND "
			      "to_regclass('cdr') IS NOT NULL",
			   &v, err, errlen) < 0)
		return -1;
	int citus = v && !strcmp(v, "t");
	free(v);
	if (!citus)
		return 0;
	if (pgc_value(c, "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cdr'::regclass)", &v,
			   err, errlen) < 0)
		return -1;
	int d = v && !strcmp(v, "t");
	free(v);
	return d;
}

int migrate_distribute_check(PGconn *c, char *err, size_t errlen)
{
	char *v = NULL;
	if (pgc_value(c,
			   "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN 'ok' "
			   "WHEN EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus') THEN 'available' "
			   "ELSE 'missing' END",
			   &v, err, errlen) < 0)
		return pgc_error_exit(c, err);
	int rc = EXIT_OK;
	if (!v || strcmp(v, "ok")) {
		snprintf(err, errlen, "--distribute: %s",
			 v && !strcmp(v, "available")
				 ? "the citus extension is installed on the server but not created in this database "
				   "(on the coordinator and every worker: CREATE EXTENSION citus; see docs/scale-out.md)"
				 : "Citus is not installed on this server (no citus extension): --distribute needs a Citus "
				   "coordinator (docs/scale-out.md); plain PostgreSQL needs only 'cdrflow-etl migrate'");
		rc = EXIT_CONFIG;
	}
	free(v);
	return rc;
}

int migrate_run(PGconn *c, int distribute, int *from, int *to, int *distributed, char *err, size_t errlen)
{
	*from = *to = 0;
	*distributed = -1;
	/* No wait is endless: the lock, and the DDL waiting for a reader's
	 * long transaction on a table (lock_timeout, 15 s unless set). */
	if (pgc_default_lock_timeout(c, "15s", err, errlen) < 0)
		return fail(c, err, errlen, "cannot set lock_timeout");
	/* Since 0013 the lock is row 'migrate' of etl_lock, which tenant roles
	 * cannot take; before, the advisory key (bounded by lock_timeout). */
	char *v = NULL;
	if (pgc_value(c, "SELECT to_regclass('etl_lock') IS NOT NULL", &v, err, errlen) < 0)
		return fail(c, err, errlen, "cannot read the catalog");
	int have_row_lock = v && !strcmp(v, "t");
	free(v);
	struct etl_lock lk = { NULL, 0 };
	if (have_row_lock) {
		int lrc = etl_lock_take(&lk, c, "migrate", err, errlen);
		if (lrc != EXIT_OK) {
			etl_lock_close(&lk);
			return lrc;
		}
	} else if (pgc_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", err, errlen) < 0) {
		if (!strncmp(err, "55P03", 5)) {
			snprintf(err, errlen, "another session holds the migration lock (advisory key " MIGRATE_LOCK
				 ") and did not release it within lock_timeout; try again later");
			return EXIT_TEMPFAIL;
		}
		return fail(c, err, errlen, "cannot take the migration lock");
	}
	int rc = EXIT_OK;
	char *have = NULL; /* ",1,2,...," the versions the database recorded */
	int cur = migrate_current(c, err, errlen);
	if (cur < 0) {
		rc = fail(c, err, errlen, "cannot read the schema version");
		goto out;
	}
	*from = *to = cur;
	/* a distributed schema stays distributed: every migration runs its DDL
	 * over one connection per worker, and new tables are distributed */
	int dist = schema_distributed(c, err, errlen);
	if (dist < 0) {
		rc = fail(c, err, errlen, "cannot read the catalog");
		goto out;
	}
	if (cur > migrate_latest()) {
		snprintf(err, errlen, "the database schema is at version %d, newer than this cdrflow-etl knows (%d): "
			 "upgrade cdrflow", cur, migrate_latest());
		rc = EXIT_CONFIG;
		goto out;
	}
	/* every known migration the database has not recorded, in order: also
	 * one below the newest applied (migrations merged out of order) */
	if (cur > 0 && pgc_value(c, "SELECT ',' || string_agg(version::text, ',') || ',' FROM schema_version", &have, err,
			   errlen) < 0) {
		rc = fail(c, err, errlen, "cannot read the schema version");
		goto out;
	}
	for (const struct migration *m = migrations; m->sql; m++) {
		char key[24];
		snprintf(key, sizeof key, ",%d,", m->version);
		if (have && strstr(have, key))
			continue;
		char ins[256];
		snprintf(ins, sizeof ins, "INSERT INTO schema_version (version, description) VALUES (%d, '%s')",
			 m->version, m->description);
		if (pgc_exec(c, "BEGIN", err, errlen) < 0 ||
		    (dist && pgc_exec(c, "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'", err, errlen) < 0) ||
		    pgc_exec(c, m->sql, err, errlen) < 0 ||
		    pgc_exec(c, ins, err, errlen) < 0 || pgc_exec(c, "COMMIT", err, errlen) < 0) {
			char what[128];
			snprintf(what, sizeof what, "migration %04d (%s) failed", m->version, m->description);
			rc = fail(c, err, errlen, what);
			char ignored[64];
			pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
			goto out;
		}
		log_info("applied migration %04d: %s", m->version, m->description);
		if (m->version > *to)
			*to = m->version;
		if (m->version < cur)
			*from = m->version - 1 < *from ? m->version - 1 : *from; /* a gap filled: say so */
	}
	if (dist || distribute) {
		char *n = NULL;
		if (pgc_exec(c, "BEGIN", err, errlen) < 0 || pgc_value(c, "SELECT cdrflow_distribute()", &n, err, errlen) < 0 ||
		    pgc_exec(c, "COMMIT", err, errlen) < 0) {
			rc = fail(c, err, errlen, "distributing the tables failed");
			char ignored[64];
			pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
			free(n);
			goto out;
		}
		*distributed = n ? (int)strtol(n, NULL, 10) : 0;
		free(n);
		if (*distributed > 0)
			log_info("distributed %d tables (Citus)", *distributed);
	}
out:;
	free(have);
	char ignored[256];
	if (!have_row_lock && PQstatus(c) == CONNECTION_OK)
		pgc_exec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", ignored, sizeof ignored);
	etl_lock_close(&lk);
	return rc;
}

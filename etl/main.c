/*
 * cdrflow-etl - load the collector's segments into the PostgreSQL warehouse.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "clock.h"
#include "pgconn.h"
#include "exitcode.h"
#include "importcsv.h"
#include "cdrcsv.h"
#include "caveat.h"
#include "doctor.h"
#include "fraudcfg.h"
#include "lcr.h"
#include "retention.h"
#include "kamload.h"
#include "legclass.h"
#include "load.h"
#include "lock.h"
#include "segment.h"
#include "xalloc.h"
#include "log.h"
#include "migrate.h"
#include "pgconn.h"
#include "queuelog.h"
#include "profiles.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cdrflow-etl --once [--spool DIR] [--db CONNINFO] [-c FILE]\n"
		"       cdrflow-etl --follow [--spool DIR] [--db CONNINFO] [-c FILE]\n"
		"       cdrflow-etl migrate [--distribute] [--db CONNINFO]\n"
		"       cdrflow-etl import-csv [--node NAME] [--timezone ZONE] [--no-uniqueid] [--no-userfield]\n"
		"                              [--force] [--db CONNINFO] MASTER.CSV...\n"
		"       cdrflow-etl import-queue-log [--node NAME] [--db CONNINFO] QUEUE_LOG...\n"
		"       cdrflow-etl version [--db CONNINFO]\n"
		"       cdrflow-etl lcr --from TIME --to TIME [-c FILE] [--db CONNINFO]\n"
		"       cdrflow-etl retention --keep AGE [--dry-run] [--db CONNINFO]\n"
		"       cdrflow-etl cdr-csv [--spool DIR] [-c FILE]\n"
		"       cdrflow-etl doctor [--spool DIR] [-c FILE]\n"
		"       cdrflow-etl skip --node NAME --segment S --offset O [--spool DIR] [--db CONNINFO]\n"
		"\n"
		"Loads the collector's segment files into the cdrflow PostgreSQL warehouse,\n"
		"exactly once: the rows of each batch and the advanced checkpoint commit in\n"
		"one transaction: every CEL event into cel, the analytics events into\n"
		"ami_event, and the CDR legs (cdr) and conversations (call) rebuilt from the\n"
		"channel events by a re-run of Asterisk's own CDR state machine.\n"
		"\n"
		"commands:\n"
		"  --once           load everything the spool holds now, then exit\n"
		"  --follow         load continuously: poll the spool every etl.poll_interval,\n"
		"                   reconnect to PostgreSQL with backoff; SIGTERM/SIGINT stop\n"
		"                   after the current batch (exit 0)\n"
		"  migrate          apply every missing schema migration (idempotent; refuses a\n"
		"                   database whose schema is newer than this program); on a Citus\n"
		"                   coordinator with --distribute, then distributes the tables\n"
		"                   (by node, by tenant, reference; docs/scale-out.md); a distributed\n"
		"                   schema stays distributed in later runs\n"
		"  version          print the database's schema version and the newest known one\n"
		"  transform        measuring aid: run the transform over the whole spool without a\n"
		"                   database and print events/s (--copy-out DIR writes the COPY rows)\n"
		"  cdr-csv          rebuild the CDR rows from the spool without a database and print\n"
		"                   them as Asterisk's Master.csv (loguniqueid, loguserfield,\n"
		"                   newcdrcolumns; dates in UTC), honouring the cdr: settings\n"
		"  doctor           read the spool and print, per node, every AMI input cdrflow\n"
		"                   relies on (Timestamp, Newexten, VarSet, ChanVariable, CEL and its\n"
		"                   event types, DialBegin/DialEnd, Bridge*, Queue/Agent, RTCP,\n"
		"                   OriginateResponse, Cdr), whether it is present, missing (the\n"
		"                   activity happened, the event did not come) or not seen, what is\n"
		"                   lost without it and the manager.conf/cel.conf line that restores\n"
		"                   it; with Event: Cdr in the spool, a self-check of the rebuilt rows.\n"
		"                   --once, --follow and cdr-csv print the same as warning: lines once\n"
		"                   per node and run; --once/--follow keep them in input_caveat\n"
		"  retention        drop whole monthly partitions older than --keep (13mo, 400d, 2y),\n"
		"                   never DELETE; --dry-run lists them; rows left in a default partition\n"
		"                   are reported, not deleted; rollups are kept\n"
		"  lcr              least-cost-routing what-if: what the carrier legs of --from..--to\n"
		"                   would have cost on each rating.buy deck, and routed leg by leg\n"
		"  skip             pass a corrupt record or lost records of one node, at the exact\n"
		"                   position --once reported (segment S, offset O): checked against\n"
		"                   the spool, recorded in etl_skip with the bytes and records lost\n"
		"  import-csv       backfill cdr from Asterisk's own Master.csv files (cdr_csv, with or\n"
		"                   without loguniqueid/loguserfield/newcdrcolumns; the layout is found\n"
		"                   from the field count), one transaction per file, rows marked\n"
		"                   imported; a file already imported (same SHA-256) is refused\n"
		"  import-queue-log backfill the queue metrics from Asterisk's queue_log files, parsed\n"
		"                   here (a line whose numbers are unreadable is refused with its\n"
		"                   number, 65); lines imported before are skipped; one transaction\n"
		"                   per file\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  YAML configuration (spool, database, etl, cdr sections)\n"
		"  -s, --spool DIR    the collector's spool (overrides the config file)\n"
		"  -d, --db CONNINFO  libpq connection string or URI (default: the PG* environment,\n"
		"                     e.g. PGHOST, PGPORT, PGUSER, PGDATABASE); one carrying a\n"
		"                     password is refused (64): use PGPASSWORD, ~/.pgpass or the config\n"
		"  --node NAME        import-csv, import-queue-log: node stamped on the rows\n"
		"                     (default: imported);\n"
		"                     skip: the node whose corrupt position is passed\n"
		"  --segment S        skip: segment number of the corrupt position\n"
		"  --offset O         skip: byte offset of the corrupt position\n"
		"  --timezone ZONE    import-csv: zone of the file's dates (cdr_csv writes local time,\n"
		"                     or UTC with usegmtime=yes; default: UTC)\n"
		"  --no-uniqueid      import-csv: the file has no uniqueid column (loguniqueid=no)\n"
		"  --no-userfield     import-csv: the file has no userfield column (loguserfield=no)\n"
		"  --force            import-csv: load a file even if it was imported before\n"
		"  --copy-out DIR     transform: write the COPY rows and column list of each\n"
		"                     table into DIR (cel, ami_event, cdr, call .copy/.columns)\n"
		"  --from TIME        lcr: start of the period (inclusive), e.g. 2026-11-01\n"
		"  --to TIME          lcr: end of the period (exclusive)\n"
		"  --keep AGE         retention: how much to keep (13mo, 400d, 2y)\n"
		"  --dry-run          retention: only list what would be dropped\n"
		"  --distribute       migrate: distribute the tables over a Citus cluster (the\n"
		"                     database must have the citus extension, else exit 78)\n"
		"  -v, --verbose      log debug messages\n"
		"  -q, --quiet        log errors only\n"
		"  -h, --help         show this help and exit\n"
		"  -V, --version      show the program version and exit\n"
		"\n"
		"exit status: 0 ok, 64 usage (skip: no corrupt data at that position), 65 corrupt\n"
		"segment record, lost records or failing analytics (nothing after them loaded on\n"
		"that node; the other nodes load),\n"
		"66 spool missing, 69 database unreachable (retry later), 70 internal error,\n"
		"75 another cdrflow-etl is running (retry later), 78 bad configuration or a\n"
		"database schema that needs 'cdrflow-etl migrate' (or is newer than this program)\n"
		"or migrate --distribute on a database without Citus,\n"
		"79 doctor: an input that changes the CDR rows is missing on a node.\n");
}

enum { OPT_ONCE = 256, OPT_FOLLOW, OPT_NODE, OPT_TZ, OPT_NO_UNIQUEID, OPT_NO_USERFIELD, OPT_FORCE, OPT_COPY_OUT, OPT_FROM, OPT_TO,
       OPT_KEEP, OPT_DRY_RUN, OPT_SEGMENT, OPT_OFFSET, OPT_DISTRIBUTE };

static const struct option long_options[] = {
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "follow", no_argument, NULL, OPT_FOLLOW },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "timezone", required_argument, NULL, OPT_TZ },
	{ "no-uniqueid", no_argument, NULL, OPT_NO_UNIQUEID },
	{ "no-userfield", no_argument, NULL, OPT_NO_USERFIELD },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "copy-out", required_argument, NULL, OPT_COPY_OUT },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "keep", required_argument, NULL, OPT_KEEP },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "segment", required_argument, NULL, OPT_SEGMENT },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "distribute", no_argument, NULL, OPT_DISTRIBUTE },
	{ "config", required_argument, NULL, 'c' },
	{ "spool", required_argument, NULL, 's' },
	{ "db", required_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int run_once_quiet(PGconn *conn, const struct etl_config *cfg, int quiet_when_idle);

/* Tenants, numbering and rate decks: built once per process. */
static struct legclass legclass;
/* What the doctor learnt of each node in this process (warnings once). */
static struct caveat_run *caveats;

/* tenants.allowances -> tenant_allowance, replaced as a whole. */
static int sync_allowances(PGconn *conn, const struct etl_config *cfg, char *err, size_t errlen)
{
	if (pgc_exec(conn, "BEGIN", err, errlen) < 0 || pgc_exec(conn, "DELETE FROM tenant_allowance", err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_allowances; i++) {
		const char *v[2] = { cfg->allowances[i].tenant, NULL };
		char minutes[24];
		snprintf(minutes, sizeof minutes, "%" PRId64, cfg->allowances[i].minutes);
		v[1] = minutes;
		PGresult *r = PQexecParams(conn, "INSERT INTO tenant_allowance (tenant, minutes) VALUES ($1, $2) "
					   "ON CONFLICT (tenant) DO UPDATE SET minutes = excluded.minutes",
					   2, NULL, v, NULL, NULL, 0);
		int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			snprintf(err, errlen, "tenant_allowance: %s", PQerrorMessage(conn));
		PQclear(r);
		if (!ok)
			goto fail;
	}
	if (pgc_exec(conn, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;
fail:;
	char ignored[128];
	pgc_exec(conn, "ROLLBACK", ignored, sizeof ignored);
	return -1;
}

/* The load lock: row 'load' of etl_lock held by a second connection
 * (etl/lock.h), which tenant roles cannot take; kept open across passes. */
static struct etl_lock run_lock;

/* Take the load lock: 0, or an exit code (logged).  Waits up to
 * lock_timeout (15 s unless set): a run killed a moment ago may still hold
 * it until its server process notices the dead client.  The loading
 * session's own lock waits (partitions, a reader's long transaction) are
 * bounded the same way. */
static int take_load_lock(PGconn *conn)
{
	char err[1024];
	int rc = etl_lock_take(&run_lock, conn, "load", err, sizeof err);
	if (rc == EXIT_OK && pgc_default_lock_timeout(conn, "15s", err, sizeof err) < 0) {
		etl_lock_release(&run_lock);
		rc = pgc_error_exit(conn, err);
	}
	if (rc != EXIT_OK)
		log_error("%s", err);
	return rc;
}

static void release_load_lock(PGconn *conn)
{
	(void)conn;
	etl_lock_release(&run_lock);
}

static int run_once(PGconn *conn, const struct etl_config *cfg)
{
	return run_once_quiet(conn, cfg, 0);
}

static void on_stop(int sig)
{
	(void)sig;
	load_stop_requested = 1;
}

/* Sleep ms, cut short by a stop request. */
static void nap(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (!load_stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int run_follow(const char *db, const struct etl_config *cfg)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop; /* no SA_RESTART: sleeps and waits end early */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	PGconn *conn = NULL;
	uint64_t backoff = 1000;
	int rc = EXIT_OK, down_logged = 0;
	log_info("following spool \"%s\" every %" PRIu64 " ms", cfg->spool, cfg->poll_ms);
	while (!load_stop_requested) {
		char err[1024];
		if (!conn) {
			conn = pgc_connect(db, "cdrflow-etl", NULL, err, sizeof err);
			if (!conn) {
				if (!down_logged++)
					log_error("%s; retrying", err);
				nap(backoff);
				backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
				continue;
			}
			if (down_logged)
				log_info("connected to PostgreSQL again");
			down_logged = 0;
			backoff = 1000;
		}
		rc = run_once_quiet(conn, cfg, 1);
		if (rc == EXIT_NOINPUT) { /* no spool yet: the collector will make it */
			rc = EXIT_OK;
			nap(cfg->poll_ms > 1000 ? cfg->poll_ms : 1000);
			continue;
		}
		if (rc == EXIT_UNAVAILABLE || rc == EXIT_TEMPFAIL) {
			/* the server went away, or another loader holds the lock: wait */
			etl_lock_close(&run_lock);
			PQfinish(conn);
			conn = NULL;
			rc = EXIT_OK;
			nap(backoff);
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
			continue;
		}
		if (rc == EXIT_DATAERR) {
			/* a node stopped at corrupt data (logged once): the others
			 * keep loading until an operator runs 'cdrflow-etl skip' */
			rc = EXIT_OK;
		} else if (rc != EXIT_OK) {
			break; /* configuration or a bug: fix something */
		}
		nap(cfg->poll_ms);
	}
	etl_lock_close(&run_lock);
	if (conn)
		PQfinish(conn);
	if (rc == EXIT_OK)
		log_info("stopped");
	return rc;
}

/* The warehouse's country table into legclass (once per process): the
 * legs' dst_country is derived in C from the one table SQL has too. */
static int load_countries(PGconn *conn, char *err, size_t errlen)
{
	if (legclass.ncountries)
		return 0;
	char *table = NULL;
	if (pgc_value(conn, "SELECT string_agg(prefix || ' ' || iso, E'\\n') FROM rollup_country_code", &table, err,
			   errlen) < 0)
		return -1;
	int rc = legclass_set_countries(&legclass, table, err, errlen);
	free(table);
	return rc;
}

static int run_once_quiet(PGconn *conn, const struct etl_config *cfg, int quiet_when_idle)
{
	char err[1024];
	int cur = migrate_current(conn, err, sizeof err);
	if (cur < 0) {
		log_error("%s", err);
		return pgc_error_exit(conn, err);
	}
	if (cur != migrate_latest()) {
		log_error("the database schema is at version %d, this cdrflow-etl needs %d: run 'cdrflow-etl migrate'",
			  cur, migrate_latest());
		return EXIT_CONFIG;
	}
	int lrc = take_load_lock(conn);
	if (lrc != EXIT_OK)
		return lrc;
	struct load_stats st;
	double t0 = clock_mono_s();
	if (sync_allowances(conn, cfg, err, sizeof err) < 0 || profiles_sync(conn, cfg, &legclass, err, sizeof err) < 0 ||
	    fraud_config_sync(conn, &cfg->fraud, err, sizeof err) < 0 || load_countries(conn, err, sizeof err) < 0 ||
	    load_register_sources(conn, cfg, err, sizeof err) < 0) {
		log_error("%s", err);
		release_load_lock(conn);
		return pgc_exit_for_value(conn, err, EXIT_CONFIG); /* a value of the config refused */
	}
	/* the doctor reads what this run loads: warnings once per node, caveats kept */
	if (!caveats)
		caveats = caveat_run_new();
	char cerr[1024];
	int cav = caveat_before(caveats, conn, cfg->spool, cerr, sizeof cerr);
	/* the doctor is fed from the load's own parse of each record */
	int rc = load_once(conn, cfg, &legclass, cav == 0 ? caveat_feed(caveats) : NULL, isatty(STDERR_FILENO), &st, err,
			   sizeof err);
	/* the spool may not exist when every source is a database (kamailio) */
	if (rc == EXIT_NOINPUT && cfg->nsources)
		rc = EXIT_OK;
	struct kam_stats ks = { 0 };
	if (rc == EXIT_OK || rc == EXIT_DATAERR) {
		char kerr[1024];
		double k0 = clock_mono_s();
		int krc = kam_load_all(conn, cfg, &legclass, quiet_when_idle, &ks, kerr, sizeof kerr);
		double kdt = clock_mono_s() - k0;
		if (krc != EXIT_OK) {
			log_error("%s", kerr);
			if (rc == EXIT_OK)
				rc = krc;
		}
		if (ks.sources && (ks.rows || !quiet_when_idle)) {
			printf("kamailio: sources=%" PRIu64 " rows=%" PRIu64 " legs=%" PRIu64 " calls=%" PRIu64
			       " skipped=%" PRIu64 " batches=%" PRIu64 " seconds=%.3f rows/s=%.0f\n",
			       ks.sources, ks.rows, ks.legs, ks.calls, ks.skipped, ks.batches, kdt,
			       kdt > 0 ? (double)ks.rows / kdt : 0.0);
			fflush(stdout);
		}
	}
	double dt = clock_mono_s() - t0;
	/* corrupt data: each stuck node was logged once by load_once() */
	if (rc == EXIT_TEMPFAIL)
		log_error("%s (a lock wait passed lock_timeout: a long transaction holds a lock on a warehouse table, "
			  "see pg_stat_activity; retry later)", err);
	else if (rc != EXIT_OK && !(rc == EXIT_DATAERR && quiet_when_idle))
		log_error("%s", err);
	if (cav < 0 || (PQstatus(conn) == CONNECTION_OK && caveat_after(caveats, conn, cfg->spool, cerr, sizeof cerr) < 0))
		log_warn("doctor: %s", cerr);
	if (quiet_when_idle && st.events == 0 && (rc == EXIT_OK || rc == EXIT_DATAERR)) {
		release_load_lock(conn);
		return rc;
	}
	printf("etl: events=%" PRIu64 " cel=%" PRIu64 " ami_event=%" PRIu64 " legs=%" PRIu64 " calls=%" PRIu64
	       " batches=%" PRIu64 " seconds=%.3f events/s=%.0f\n",
	       st.events, st.cel_rows, st.ami_rows, st.legs, st.calls, st.batches, dt,
	       dt > 0 ? (double)st.events / dt : 0.0);
	fflush(stdout);
	release_load_lock(conn);
	return rc;
}

/* ------------------------------------------------------------ commands */

/* One invocation: the command line, then what the command needs. */
struct invocation {
	const struct command *cmd;
	const char *db, *config_path, *spool;
	int level;
	struct import_opts imp;
	const char *copy_out, *from, *to, *keep;
	int keep_months, dry_run, distribute;
	const char *node, *skip_seg, *skip_off; /* --node as given (import-csv, skip) */
	struct seg_pos skip_at;
	char **files; /* import-csv */
	int nfiles;
	struct etl_config cfg;
	int have_cfg, have_rules;
	PGconn *conn;
	char err[1024];
};

/* What a command needs before it runs. */
enum {
	NEED_RULES = 1 << 0,  /* legclass (tenants, numbering, rating) and the fraud rules */
	NEED_DB = 1 << 1,     /* a connection */
	NEED_SCHEMA = 1 << 2, /* a warehouse at this program's schema version */
};

struct command {
	const char *name;
	unsigned needs;
	int (*run)(struct invocation *iv);
};

/* The command's failure: logged once, its exit code returned. */
static int failed(struct invocation *iv, int rc)
{
	if (rc != EXIT_OK)
		log_error("%s", iv->err);
	return rc;
}

static int cmd_once(struct invocation *iv)
{
	return run_once(iv->conn, &iv->cfg);
}

static int cmd_follow(struct invocation *iv)
{
	return run_follow(iv->db, &iv->cfg);
}

static int cmd_doctor(struct invocation *iv)
{
	int rc = doctor_command(&iv->cfg, stdout, iv->err, sizeof iv->err);
	return rc == EXIT_DEGRADED ? rc : failed(iv, rc);
}

static int cmd_cdr_csv(struct invocation *iv)
{
	struct cdrcsv_stats cs;
	/* degraded inputs: say so before the rows (exit code unchanged) */
	if (doctor_warn_spool(iv->cfg.spool, iv->err, sizeof iv->err) != EXIT_OK)
		log_warn("doctor: %s", iv->err);
	int rc = failed(iv, cdr_csv(&iv->cfg, stdout, &cs, iv->err, sizeof iv->err));
	log_info("cdr-csv: events=%" PRIu64 " rows=%" PRIu64 " channels still up=%" PRIu64, cs.events, cs.rows, cs.live);
	return rc;
}

static int cmd_transform(struct invocation *iv)
{
	struct load_stats st;
	double t0 = clock_mono_s();
	int rc = failed(iv, transform_only(&iv->cfg, &legclass, iv->copy_out, &st, iv->err, sizeof iv->err));
	double dt = clock_mono_s() - t0;
	printf("transform: events=%" PRIu64 " cel=%" PRIu64 " ami_event=%" PRIu64 " legs=%" PRIu64 " calls=%" PRIu64
	       " bytes=%" PRIu64 " seconds=%.3f events/s=%.0f\n", st.events, st.cel_rows, st.ami_rows, st.legs, st.calls,
	       st.bytes, dt, dt > 0 ? (double)st.events / dt : 0.0);
	return rc;
}

static int cmd_import_csv(struct invocation *iv)
{
	int rc = EXIT_OK;
	for (int i = 0; i < iv->nfiles && rc == EXIT_OK; i++) {
		uint64_t rows;
		rc = failed(iv, import_csv(iv->conn, iv->files[i], &iv->imp, &rows, iv->err, sizeof iv->err));
		if (rc == EXIT_OK)
			printf("imported %" PRIu64 " legs from %s\n", rows, iv->files[i]);
	}
	return rc;
}

static int cmd_import_queue_log(struct invocation *iv)
{
	int rc = EXIT_OK;
	for (int i = 0; i < iv->nfiles && rc == EXIT_OK; i++) {
		struct qlog_stats qs;
		uint64_t fresh;
		rc = failed(iv, qlog_import(iv->conn, iv->files[i], iv->imp.node, &qs, &fresh, iv->err, sizeof iv->err));
		if (rc == EXIT_OK)
			printf("imported %" PRIu64 " new of %" PRIu64 " event lines from %s (%" PRIu64
			       " other lines skipped)\n", fresh, qs.rows, iv->files[i], qs.skipped);
	}
	return rc;
}

static int cmd_skip(struct invocation *iv)
{
	int rc = take_load_lock(iv->conn);
	if (rc != EXIT_OK)
		return rc;
	rc = failed(iv, load_skip(iv->conn, &iv->cfg, iv->imp.node, iv->skip_at, stdout, iv->err, sizeof iv->err));
	release_load_lock(iv->conn);
	return rc;
}

static int cmd_retention(struct invocation *iv)
{
	int r = retention_run(iv->conn, iv->keep_months, iv->dry_run, stdout, iv->err, sizeof iv->err);
	return failed(iv, r == 0 ? EXIT_OK : r == -2 ? EXIT_USAGE : pgc_error_exit(iv->conn, iv->err));
}

static int cmd_lcr(struct invocation *iv)
{
	return failed(iv, lcr_report(iv->conn, &legclass, iv->from, iv->to, stdout, iv->err, sizeof iv->err));
}

static int cmd_version(struct invocation *iv)
{
	int cur = migrate_current(iv->conn, iv->err, sizeof iv->err);
	if (cur < 0)
		return failed(iv, pgc_error_exit(iv->conn, iv->err));
	printf("schema version %d (this cdrflow-etl knows up to %d)\n", cur, migrate_latest());
	return EXIT_OK;
}

static int cmd_migrate(struct invocation *iv)
{
	int v_from, v_to, ndist = -1;
	int rc = iv->distribute ? failed(iv, migrate_distribute_check(iv->conn, iv->err, sizeof iv->err)) : EXIT_OK;
	if (rc == EXIT_OK)
		rc = failed(iv, migrate_run(iv->conn, iv->distribute, &v_from, &v_to, &ndist, iv->err, sizeof iv->err));
	if (rc == EXIT_OK && v_from == v_to)
		printf("schema is up to date at version %d\n", v_to);
	else if (rc == EXIT_OK)
		printf("schema migrated from version %d to %d\n", v_from, v_to);
	if (rc == EXIT_OK && ndist >= 0)
		printf("schema is distributed (Citus): %d tables distributed now\n", ndist);
	return rc;
}

static const struct command commands[] = {
	{ "once", NEED_RULES | NEED_DB, cmd_once }, /* run_once checks the schema at every pass */
	{ "follow", NEED_RULES, cmd_follow },       /* connects (and reconnects) itself */
	{ "migrate", NEED_DB, cmd_migrate },
	{ "version", NEED_DB, cmd_version },
	{ "transform", NEED_RULES, cmd_transform },
	{ "cdr-csv", 0, cmd_cdr_csv },
	{ "doctor", 0, cmd_doctor },
	{ "lcr", NEED_RULES | NEED_DB, cmd_lcr },
	{ "retention", NEED_DB, cmd_retention },
	{ "skip", NEED_DB | NEED_SCHEMA, cmd_skip },
	{ "import-csv", NEED_DB | NEED_SCHEMA, cmd_import_csv },
	{ "import-queue-log", NEED_DB | NEED_SCHEMA, cmd_import_queue_log },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* -------------------------------------------------------- the sequence */

/* Options into iv.  Returns -1 to go on, or the exit code (--help, bad
 * options). */
static int parse_options(int argc, char **argv, struct invocation *iv)
{
	int c, mode = 0;
	while ((c = getopt_long(argc, argv, "c:s:d:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_ONCE: mode = 1; break;
		case OPT_FOLLOW: mode = 2; break;
		case OPT_NODE: iv->node = iv->imp.node = optarg; break;
		case OPT_SEGMENT: iv->skip_seg = optarg; break;
		case OPT_OFFSET: iv->skip_off = optarg; break;
		case OPT_TZ: iv->imp.timezone = optarg; break;
		case OPT_NO_UNIQUEID: iv->imp.uniqueid = 0; break;
		case OPT_NO_USERFIELD: iv->imp.userfield = 0; break;
		case OPT_FORCE: iv->imp.force = 1; break;
		case OPT_COPY_OUT: iv->copy_out = optarg; break;
		case OPT_FROM: iv->from = optarg; break;
		case OPT_TO: iv->to = optarg; break;
		case OPT_KEEP: iv->keep = optarg; break;
		case OPT_DRY_RUN: iv->dry_run = 1; break;
		case OPT_DISTRIBUTE: iv->distribute = 1; break;
		case 'c': iv->config_path = optarg; break;
		case 's': iv->spool = optarg; break;
		case 'd': iv->db = optarg; break;
		case 'v': iv->level = LOG_DEBUG; break;
		case 'q': iv->level = LOG_ERROR; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-etl %s\n", CDRFLOW_VERSION); return EXIT_OK;
		default:
			fprintf(stderr, "Try 'cdrflow-etl --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	/* only --follow is a daemon: the rest print "cdrflow-etl: message" */
	log_set_cli(mode != 2);
	const char *name = mode == 1 ? "once" : mode == 2 ? "follow" : NULL;
	if (!name && optind < argc)
		name = argv[optind++];
	if (!name)
		return log_usage_error("%s", "a command is required (--once, --follow, migrate, version)");
	if (!(iv->cmd = find_command(name)))
		return log_usage_error("unknown command \"%s\"", name);
	iv->files = argv + optind;
	iv->nfiles = argc - optind;
	return -1;
}

/* Arguments and option values the command needs.  -1 or EXIT_USAGE. */
static int check_arguments(struct invocation *iv)
{
	const char *name = iv->cmd->name;
	int is_import = iv->cmd->run == cmd_import_csv || iv->cmd->run == cmd_import_queue_log;
	if (iv->db && conninfo_has_password(iv->db))
		return log_usage_error("%s", CONNINFO_PASSWORD_REFUSED);
	if (iv->distribute && iv->cmd->run != cmd_migrate)
		return log_usage_error("%s", "--distribute goes with migrate only");
	if (is_import && iv->nfiles == 0)
		return log_usage_error("%s needs at least one file", name);
	if (!is_import && iv->nfiles > 0)
		return log_usage_error("unexpected argument \"%s\"", iv->files[0]);
	if (!seg_node_name_valid(iv->imp.node))
		return log_usage_error("invalid --node \"%s\" (use 1-64 of A-Z a-z 0-9 . _ -)", iv->imp.node);
	if (!strcmp(name, "skip")) {
		char *end;
		if (!iv->node || !iv->skip_seg || !iv->skip_off)
			return log_usage_error("%s", "skip needs --node, --segment and --offset (as the error of --once gives them)");
		errno = 0;
		iv->skip_at.segno = strtoull(iv->skip_seg, &end, 10);
		if (errno || *end || !*iv->skip_seg || *iv->skip_seg == '-' || iv->skip_at.segno == 0)
			return log_usage_error("invalid --segment \"%s\" (a segment number, 1 or more)", iv->skip_seg);
		iv->skip_at.offset = strtoull(iv->skip_off, &end, 10);
		if (errno || *end || !*iv->skip_off || *iv->skip_off == '-')
			return log_usage_error("invalid --offset \"%s\" (a byte offset)", iv->skip_off);
	}
	if (!strcmp(name, "retention") && (!iv->keep || retention_parse_keep(iv->keep, &iv->keep_months) < 0))
		return log_usage_error("%s", "retention needs --keep N with a unit, e.g. 13mo, 400d or 2y (at least one month)");
	if (!strcmp(name, "lcr") && (!iv->from || !iv->to))
		return log_usage_error("%s", "lcr needs --from and --to");
	return -1;
}

/* The configuration file (read once), the log level, --db and --spool. */
static int load_config(struct invocation *iv)
{
	int rc = etl_config_load(&iv->cfg, iv->config_path, iv->err, sizeof iv->err);
	iv->have_cfg = 1;
	if (rc != EXIT_OK)
		return failed(iv, rc);
	log_set_level(iv->level >= 0 ? (enum log_level)iv->level : (enum log_level)log_level_parse(iv->cfg.log_level));
	if (!iv->db && *iv->cfg.conninfo)
		iv->db = iv->cfg.conninfo;
	if (iv->spool) {
		free(iv->cfg.spool);
		iv->cfg.spool = xstrdup(iv->spool);
	}
	return EXIT_OK;
}

/* Tenants, numbering and rate decks, built once per process (the fraud
 * rules came with the configuration). */
static int load_rules(struct invocation *iv)
{
	if (legclass_init(&legclass, &iv->cfg, iv->err, sizeof iv->err) < 0)
		return failed(iv, EXIT_CONFIG);
	iv->have_rules = 1;
	return EXIT_OK;
}

static int connect_db(struct invocation *iv)
{
	iv->conn = pgc_connect(iv->db, "cdrflow-etl", NULL, iv->err, sizeof iv->err);
	return iv->conn ? EXIT_OK : failed(iv, EXIT_UNAVAILABLE);
}

/* The warehouse is at this program's schema version. */
static int require_schema(struct invocation *iv)
{
	int cur = migrate_current(iv->conn, iv->err, sizeof iv->err);
	if (cur == migrate_latest())
		return EXIT_OK;
	log_error("the database schema is at version %d, this cdrflow-etl needs %d: run 'cdrflow-etl migrate'", cur,
		  migrate_latest());
	return cur < 0 ? pgc_error_exit(iv->conn, iv->err) : EXIT_CONFIG;
}

static void invocation_release(struct invocation *iv)
{
	etl_lock_close(&run_lock);
	if (iv->conn)
		PQfinish(iv->conn);
	load_release();
	kam_load_release();
	caveat_run_free(caveats);
	if (iv->have_rules)
		legclass_release(&legclass);
	if (iv->have_cfg)
		etl_config_free(&iv->cfg);
}

int main(int argc, char **argv)
{
	log_init("cdrflow-etl");
	struct invocation iv = { .level = -1, .imp = { "imported", "UTC", -1, -1, 0 } };
	int rc = parse_options(argc, argv, &iv);
	if (rc < 0)
		rc = check_arguments(&iv);
	if (rc >= 0)
		return rc;
	unsigned needs = iv.cmd->needs;
	rc = load_config(&iv);
	if (rc == EXIT_OK && (needs & NEED_RULES))
		rc = load_rules(&iv);
	if (rc == EXIT_OK && (needs & NEED_DB))
		rc = connect_db(&iv);
	if (rc == EXIT_OK && (needs & NEED_SCHEMA))
		rc = require_schema(&iv);
	if (rc == EXIT_OK)
		rc = iv.cmd->run(&iv);
	invocation_release(&iv);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	return rc;
}

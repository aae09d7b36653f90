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
#include "conninfo.h"
#include "exitcode.h"
#include "importcsv.h"
#include "cdrcsv.h"
#include "caveat.h"
#include "doctor.h"
#include "fraudcfg.h"
#include "lcr.h"
#include "retention.h"
#include "legclass.h"
#include "load.h"
#include "lock.h"
#include "segment.h"
#include "xalloc.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cdrflow-etl --once [--spool DIR] [--db CONNINFO] [-c FILE]\n"
		"       cdrflow-etl --follow [--spool DIR] [--db CONNINFO] [-c FILE]\n"
		"       cdrflow-etl migrate [--distribute] [--db CONNINFO]\n"
		"       cdrflow-etl import-csv [--node NAME] [--timezone ZONE] [--no-uniqueid] [--no-userfield]\n"
		"                              [--force] [--db CONNINFO] MASTER.CSV...\n"
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
		"\n"
		"options:\n"
		"  -c, --config FILE  YAML configuration (spool, database, etl, cdr sections)\n"
		"  -s, --spool DIR    the collector's spool (overrides the config file)\n"
		"  -d, --db CONNINFO  libpq connection string or URI (default: the PG* environment,\n"
		"                     e.g. PGHOST, PGPORT, PGUSER, PGDATABASE); one carrying a\n"
		"                     password is refused (64): use PGPASSWORD, ~/.pgpass or the config\n"
		"  --node NAME        import-csv: node stamped on the rows (default: imported);\n"
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
		"segment record or lost records (nothing after them loaded on that node; the other\n"
		"nodes load),\n"
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

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "cdrflow-etl: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\nTry 'cdrflow-etl --help' for more information.\n");
	return EXIT_USAGE;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


static int run_once_quiet(PGconn *conn, const struct etl_config *cfg, int quiet_when_idle);

/* Tenants, numbering and rate decks: built once per process. */
static struct legclass legclass;
/* The fraud: and alerts: sections, synced into fraud_rule at every run. */
static struct fraud_config fraud_cfg;
/* What the doctor learnt of each node in this process (warnings once). */
static struct caveat_run *caveats;

/* tenants.allowances -> tenant_allowance, replaced as a whole. */
static int sync_allowances(PGconn *conn, const struct etl_config *cfg, char *err, size_t errlen)
{
	if (pg_exec(conn, "BEGIN", err, errlen) < 0 || pg_exec(conn, "DELETE FROM tenant_allowance", err, errlen) < 0)
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
	if (pg_exec(conn, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;
fail:;
	char ignored[128];
	pg_exec(conn, "ROLLBACK", ignored, sizeof ignored);
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
	if (rc == EXIT_OK && pg_default_lock_timeout(conn, "15s", err, sizeof err) < 0) {
		etl_lock_release(&run_lock);
		rc = pg_error_exit(conn, err);
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
			conn = pg_connect(db, "cdrflow-etl", err, sizeof err);
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
	if (pg_query_value(conn, "SELECT string_agg(prefix || ' ' || iso, E'\\n') FROM rollup_country_code", &table, err,
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
		return pg_error_exit(conn, err);
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
	double t0 = mono_s();
	if (sync_allowances(conn, cfg, err, sizeof err) < 0 || fraud_config_sync(conn, &fraud_cfg, err, sizeof err) < 0 ||
	    load_countries(conn, err, sizeof err) < 0) {
		log_error("%s", err);
		release_load_lock(conn);
		return pg_error_exit(conn, err);
	}
	/* the doctor reads what this run loads: warnings once per node, caveats kept */
	if (!caveats)
		caveats = caveat_run_new();
	char cerr[1024];
	int cav = caveat_before(caveats, conn, cerr, sizeof cerr);
	int rc = load_once(conn, cfg, &legclass, isatty(STDERR_FILENO), &st, err, sizeof err);
	double dt = mono_s() - t0;
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

int main(int argc, char **argv)
{
	log_init("cdrflow-etl");
	const char *db = NULL, *config_path = NULL, *spool = NULL;
	int c, once = 0, level = -1;
	struct import_opts imp = { "imported", "UTC", -1, -1, 0 };
	const char *copy_out = NULL, *from = NULL, *to = NULL, *keep = NULL;
	int dry_run = 0, distribute = 0;
	const char *skip_node = NULL, *skip_seg = NULL, *skip_off = NULL;
	while ((c = getopt_long(argc, argv, "c:s:d:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_ONCE: once = 1; break;
		case OPT_FOLLOW: once = 2; break;
		case OPT_NODE: imp.node = optarg; skip_node = optarg; break;
		case OPT_SEGMENT: skip_seg = optarg; break;
		case OPT_OFFSET: skip_off = optarg; break;
		case OPT_TZ: imp.timezone = optarg; break;
		case OPT_NO_UNIQUEID: imp.uniqueid = 0; break;
		case OPT_NO_USERFIELD: imp.userfield = 0; break;
		case OPT_FORCE: imp.force = 1; break;
		case OPT_COPY_OUT: copy_out = optarg; break;
		case OPT_FROM: from = optarg; break;
		case OPT_TO: to = optarg; break;
		case OPT_KEEP: keep = optarg; break;
		case OPT_DRY_RUN: dry_run = 1; break;
		case OPT_DISTRIBUTE: distribute = 1; break;
		case 'c': config_path = optarg; break;
		case 's': spool = optarg; break;
		case 'd': db = optarg; break;
		case 'v': level = LOG_DEBUG; break;
		case 'q': level = LOG_ERROR; break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-etl %s\n", CDRFLOW_VERSION); return EXIT_OK;
		default:
			fprintf(stderr, "Try 'cdrflow-etl --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (db && conninfo_has_password(db))
		return usage_error("%s", CONNINFO_PASSWORD_REFUSED);
	const char *cmd = once == 1 ? "once" : once == 2 ? "follow" : NULL;
	/* only --follow is a daemon: the rest print "cdrflow-etl: message" */
	log_set_cli(once != 2);
	if (optind < argc && !once)
		cmd = argv[optind++];
	if (!cmd)
		return usage_error("%s", "a command is required (--once, --follow, migrate, version)");
	int is_import = !strcmp(cmd, "import-csv");
	if (is_import && optind >= argc)
		return usage_error("%s", "import-csv needs at least one Master.csv file");
	if (optind < argc && !is_import)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!is_import && strcmp(cmd, "once") && strcmp(cmd, "follow") && strcmp(cmd, "migrate") && strcmp(cmd, "version") &&
	    strcmp(cmd, "transform") && strcmp(cmd, "cdr-csv") && strcmp(cmd, "doctor") && strcmp(cmd, "lcr") &&
	    strcmp(cmd, "retention") && strcmp(cmd, "skip"))
		return usage_error("unknown command \"%s\"", cmd);
	if (distribute && strcmp(cmd, "migrate"))
		return usage_error("%s", "--distribute goes with migrate only");
	if (!seg_node_name_valid(imp.node))
		return usage_error("invalid --node \"%s\" (use 1-64 of A-Z a-z 0-9 . _ -)", imp.node);

	struct seg_pos skip_at = { 0, 0 };
	if (!strcmp(cmd, "skip")) {
		char *end;
		if (!skip_node || !skip_seg || !skip_off)
			return usage_error("%s", "skip needs --node, --segment and --offset (as the error of --once gives them)");
		errno = 0;
		skip_at.segno = strtoull(skip_seg, &end, 10);
		if (errno || *end || !*skip_seg || *skip_seg == '-' || skip_at.segno == 0)
			return usage_error("invalid --segment \"%s\" (a segment number, 1 or more)", skip_seg);
		skip_at.offset = strtoull(skip_off, &end, 10);
		if (errno || *end || !*skip_off || *skip_off == '-')
			return usage_error("invalid --offset \"%s\" (a byte offset)", skip_off);
	}
	struct etl_config cfg;
	char err[1024];
	int rc = etl_config_load(&cfg, config_path, err, sizeof err);
	if (rc) {
		log_error("%s", err);
		etl_config_free(&cfg);
		return rc;
	}
	log_set_level(level >= 0 ? (enum log_level)level : (enum log_level)log_level_parse(cfg.log_level));
	if (!db && *cfg.conninfo)
		db = cfg.conninfo;
	if (spool) {
		free(cfg.spool);
		cfg.spool = xstrdup(spool);
	}
	if (!strcmp(cmd, "doctor")) {
		rc = doctor_command(&cfg, stdout, err, sizeof err);
		if (rc != EXIT_OK && rc != EXIT_DEGRADED)
			log_error("%s", err);
		etl_config_free(&cfg);
		return rc;
	}
	if (!strcmp(cmd, "cdr-csv")) {
		struct cdrcsv_stats cs;
		/* degraded inputs: say so before the rows (exit code unchanged) */
		if (doctor_warn_spool(cfg.spool, err, sizeof err) != EXIT_OK)
			log_warn("doctor: %s", err);
		rc = cdr_csv(&cfg, stdout, &cs, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
		log_info("cdr-csv: events=%" PRIu64 " rows=%" PRIu64 " channels still up=%" PRIu64, cs.events, cs.rows,
			 cs.live);
		etl_config_free(&cfg);
		return rc;
	}
	int keep_months = 0;
	if (!strcmp(cmd, "retention") && (!keep || retention_parse_keep(keep, &keep_months) < 0)) {
		etl_config_free(&cfg);
		return usage_error("%s", "retention needs --keep N with a unit, e.g. 13mo, 400d or 2y (at least one month)");
	}
	if (!strcmp(cmd, "lcr") && (!from || !to)) {
		etl_config_free(&cfg);
		return usage_error("%s", "lcr needs --from and --to");
	}
	if (!strcmp(cmd, "follow") || !strcmp(cmd, "once") || !strcmp(cmd, "transform") || !strcmp(cmd, "lcr")) {
		if (legclass_init(&legclass, &cfg, err, sizeof err) < 0) {
			log_error("%s", err);
			etl_config_free(&cfg);
			return EXIT_CONFIG;
		}
		if ((config_path ? fraud_config_load(config_path, &fraud_cfg, err, sizeof err)
				 : fraud_config_load_string("defaults", "", 0, &fraud_cfg, err, sizeof err)) < 0) {
			log_error("%s", err);
			fraud_config_free(&fraud_cfg);
			legclass_release(&legclass);
			etl_config_free(&cfg);
			return EXIT_CONFIG;
		}
	}
	if (!strcmp(cmd, "transform")) {
		struct load_stats st;
		double t0 = mono_s();
		rc = transform_only(&cfg, &legclass, copy_out, &st, err, sizeof err);
		double dt = mono_s() - t0;
		if (rc != EXIT_OK)
			log_error("%s", err);
		printf("transform: events=%" PRIu64 " cel=%" PRIu64 " ami_event=%" PRIu64 " legs=%" PRIu64
		       " calls=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f events/s=%.0f\n", st.events, st.cel_rows,
		       st.ami_rows, st.legs, st.calls, st.bytes, dt, dt > 0 ? (double)st.events / dt : 0.0);
		load_release();
		legclass_release(&legclass);
		etl_config_free(&cfg);
		return fflush(stdout) == 0 ? rc : EXIT_IOERR;
	}
	if (!strcmp(cmd, "follow")) {
		rc = run_follow(db, &cfg);
		load_release();
		caveat_run_free(caveats);
		legclass_release(&legclass);
		fraud_config_free(&fraud_cfg);
		etl_config_free(&cfg);
		return rc;
	}
	PGconn *conn = pg_connect(db, "cdrflow-etl", err, sizeof err);
	if (!conn) {
		log_error("%s", err);
		legclass_release(&legclass);
		fraud_config_free(&fraud_cfg);
		etl_config_free(&cfg);
		return EXIT_UNAVAILABLE;
	}
	if (is_import) {
		int cur = migrate_current(conn, err, sizeof err);
		if (cur != migrate_latest()) {
			log_error("the database schema is at version %d, this cdrflow-etl needs %d: run 'cdrflow-etl migrate'",
				  cur, migrate_latest());
			rc = cur < 0 ? pg_error_exit(conn, err) : EXIT_CONFIG;
		}
		for (int i = optind; i < argc && rc == EXIT_OK; i++) {
			uint64_t rows;
			rc = import_csv(conn, argv[i], &imp, &rows, err, sizeof err);
			if (rc != EXIT_OK)
				log_error("%s", err);
			else
				printf("imported %" PRIu64 " legs from %s\n", rows, argv[i]);
		}
	} else if (!strcmp(cmd, "once")) {
		rc = run_once(conn, &cfg);
	} else if (!strcmp(cmd, "skip")) {
		int cur = migrate_current(conn, err, sizeof err);
		if (cur != migrate_latest()) {
			log_error("the database schema is at version %d, this cdrflow-etl needs %d: run 'cdrflow-etl migrate'",
				  cur, migrate_latest());
			rc = cur < 0 ? pg_error_exit(conn, err) : EXIT_CONFIG;
		} else if ((rc = take_load_lock(conn)) == EXIT_OK) {
			rc = load_skip(conn, &cfg, skip_node, skip_at, stdout, err, sizeof err);
			if (rc != EXIT_OK)
				log_error("%s", err);
			release_load_lock(conn);
		}
	} else if (!strcmp(cmd, "retention")) {
		int r = retention_run(conn, keep_months, dry_run, stdout, err, sizeof err);
		rc = r == 0 ? EXIT_OK : r == -2 ? EXIT_USAGE : pg_error_exit(conn, err);
		if (rc != EXIT_OK)
			log_error("%s", err);
	} else if (!strcmp(cmd, "lcr")) {
		rc = lcr_report(conn, &legclass, from, to, stdout, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
	} else if (!strcmp(cmd, "version")) {
		int cur = migrate_current(conn, err, sizeof err);
		if (cur < 0) {
			log_error("%s", err);
			rc = pg_error_exit(conn, err);
		} else {
			printf("schema version %d (this cdrflow-etl knows up to %d)\n", cur, migrate_latest());
		}
	} else {
		int v_from, v_to, ndist = -1;
		rc = distribute ? migrate_distribute_check(conn, err, sizeof err) : EXIT_OK;
		if (rc == EXIT_OK)
			rc = migrate_run(conn, distribute, &v_from, &v_to, &ndist, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
		else if (v_from == v_to)
			printf("schema is up to date at version %d\n", v_to);
		else
			printf("schema migrated from version %d to %d\n", v_from, v_to);
		if (rc == EXIT_OK && ndist >= 0)
			printf("schema is distributed (Citus): %d tables distributed now\n", ndist);
	}
	etl_lock_close(&run_lock);
	PQfinish(conn);
	load_release();
	caveat_run_free(caveats);
	legclass_release(&legclass);
	fraud_config_free(&fraud_cfg);
	etl_config_free(&cfg);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	return rc;
}

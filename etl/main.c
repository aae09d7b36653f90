/*
 * cdrflow-etl - load the collector's segments into the PostgreSQL warehouse.
 * This version manages the warehouse schema (migrate); loading comes next.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cdrflow-etl migrate [--db CONNINFO]\n"
		"       cdrflow-etl version [--db CONNINFO]\n"
		"\n"
		"Manages the cdrflow PostgreSQL warehouse.\n"
		"\n"
		"commands:\n"
		"  migrate          apply every missing schema migration (idempotent; refuses a\n"
		"                   database whose schema is newer than this program)\n"
		"  version          print the database's schema version and the newest known one\n"
		"\n"
		"options:\n"
		"  -d, --db CONNINFO  libpq connection string or URI (default: the PG* environment,\n"
		"                     e.g. PGHOST, PGPORT, PGUSER, PGDATABASE; put the password in\n"
		"                     PGPASSWORD or ~/.pgpass, never on the command line)\n"
		"  -v, --verbose      log debug messages\n"
		"  -q, --quiet        log errors only\n"
		"  -h, --help         show this help and exit\n"
		"  -V, --version      show the program version and exit\n"
		"\n"
		"exit status: 0 ok, 64 usage, 69 database unreachable (retry later), 70 internal\n"
		"error, 78 schema newer than this program or bad configuration.\n");
}

static const struct option long_options[] = {
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

int main(int argc, char **argv)
{
	log_init("cdrflow-etl");
	const char *db = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "d:vqhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'q': log_set_level(LOG_ERROR); break;
		case 'h': usage(stdout); return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
		case 'V': printf("cdrflow-etl %s\n", CDRFLOW_VERSION); return EXIT_OK;
		default:
			fprintf(stderr, "Try 'cdrflow-etl --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("%s", "a command is required (migrate, version)");
	const char *cmd = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (strcmp(cmd, "migrate") && strcmp(cmd, "version"))
		return usage_error("unknown command \"%s\"", cmd);

	char err[1024];
	PGconn *conn = pg_connect(db, "cdrflow-etl", err, sizeof err);
	if (!conn) {
		log_error("%s", err);
		return EXIT_UNAVAILABLE;
	}
	int rc = EXIT_OK;
	if (!strcmp(cmd, "version")) {
		int cur = migrate_current(conn, err, sizeof err);
		if (cur < 0) {
			log_error("%s", err);
			rc = pg_failure_exit(conn, NULL);
		} else {
			printf("schema version %d (this cdrflow-etl knows up to %d)\n", cur, migrate_latest());
		}
	} else {
		int from, to;
		rc = migrate_run(conn, &from, &to, err, sizeof err);
		if (rc != EXIT_OK)
			log_error("%s", err);
		else if (from == to)
			printf("schema is up to date at version %d\n", to);
		else
			printf("schema migrated from version %d to %d\n", from, to);
	}
	PQfinish(conn);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_IOERR;
	return rc;
}

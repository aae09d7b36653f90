/*
 * retention-run - drive etl/retention.c from the tests until cdrflow-etl
 * has its "retention" command.
 *
 *   retention-run --parse SPEC          print the months SPEC keeps (exit 64 if invalid)
 *   retention-run --keep SPEC [--dry-run] [--months N]
 *                                       run retention on the PG* database;
 *                                       --months passes N unparsed (to test the refusal)
 *
 * Exit: 0, 64 bad usage/spec/window, 69/70 database failure (pg_error_exit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "pgconn.h"
#include "retention.h"
#include "strparse.h"

int main(int argc, char **argv)
{
	const char *parse = NULL, *keep = NULL;
	int dry_run = 0, have_months = 0, months = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--parse") && i + 1 < argc) {
			parse = argv[++i];
		} else if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
			keep = argv[++i];
		} else if (!strcmp(argv[i], "--months") && i + 1 < argc) {
			int64_t v;
			char e[128];
			if (parse_int_range(argv[++i], -100000, 100000, &v, e, sizeof e) < 0) {
				fprintf(stderr, "retention-run: --months: %s\n", e);
				return EXIT_USAGE;
			}
			months = (int)v;
			have_months = 1;
		} else if (!strcmp(argv[i], "--dry-run")) {
			dry_run = 1;
		} else {
			fprintf(stderr, "usage: retention-run --parse SPEC | --keep SPEC|--months N [--dry-run]\n");
			return EXIT_USAGE;
		}
	}
	if (parse) {
		int m;
		if (retention_parse_keep(parse, &m) < 0) {
			fprintf(stderr, "retention-run: invalid kept window \"%s\" (use e.g. 13mo, 400d, 2y)\n", parse);
			return EXIT_USAGE;
		}
		printf("%d\n", m);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_IOERR;
	}
	if (keep && retention_parse_keep(keep, &months) < 0) {
		fprintf(stderr, "retention-run: invalid kept window \"%s\" (use e.g. 13mo, 400d, 2y)\n", keep);
		return EXIT_USAGE;
	}
	if (!keep && !have_months) {
		fprintf(stderr, "retention-run: --keep or --months is required\n");
		return EXIT_USAGE;
	}
	char err[1024];
	PGconn *c = pgc_connect(NULL, "retention-run", NULL, err, sizeof err);
	if (!c) {
		fprintf(stderr, "retention-run: %s\n", err);
		return EXIT_UNAVAILABLE;
	}
	int rc = retention_run(c, months, dry_run, stdout, err, sizeof err);
	int code = EXIT_OK;
	if (rc == -2) {
		fprintf(stderr, "%s\n", err);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		fprintf(stderr, "retention-run: %s\n", err);
		code = pgc_error_exit(c, err);
	}
	PQfinish(c);
	return code;
}

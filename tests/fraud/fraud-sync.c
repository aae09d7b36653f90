/*
 * fraud-sync - load the fraud: and alerts: sections of an ETL config file
 * and write them into the warehouse, as cdrflow-etl does at start-up.
 *
 *   fraud-sync [--check] CONFIG.yaml [CONNINFO]
 *
 * --check only validates and prints the JSON document that would be synced.
 * Connection: CONNINFO, else the PG* environment.  Exit status: 0, 64 (usage),
 * 78 (bad configuration, message on stderr), 69/70 (database).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "fraudcfg.h"
#include "pgconn.h"

int main(int argc, char **argv)
{
	int check = 0, a = 1;
	if (a < argc && !strcmp(argv[a], "--check")) {
		check = 1;
		a++;
	}
	if (argc - a < 1 || argc - a > 2) {
		fprintf(stderr, "usage: fraud-sync [--check] CONFIG.yaml [CONNINFO]\n");
		return EXIT_USAGE;
	}
	char err[1024];
	struct fraud_config fc;
	if (fraud_config_load(argv[a], &fc, err, sizeof err) < 0) {
		fprintf(stderr, "fraud-sync: %s\n", err);
		fraud_config_free(&fc);
		return EXIT_CONFIG;
	}
	if (check) {
		char *json = fraud_config_json(&fc);
		printf("%s\n", json);
		free(json);
		fraud_config_free(&fc);
		return EXIT_OK;
	}
	PGconn *c = pgc_connect(argc - a == 2 ? argv[a + 1] : NULL, "fraud-sync", NULL, err, sizeof err);
	if (!c) {
		fprintf(stderr, "fraud-sync: %s\n", err);
		fraud_config_free(&fc);
		return EXIT_UNAVAILABLE;
	}
	int rc = EXIT_OK;
	if (fraud_config_sync(c, &fc, err, sizeof err) < 0) {
		fprintf(stderr, "fraud-sync: %s\n", err);
		rc = pgc_exit_for_value(c, err, EXIT_CONFIG);
	} else {
		printf("fraud-sync: %zu rules, %zu tenant limits\n", fc.nrules, fc.nlimits);
	}
	PQfinish(c);
	fraud_config_free(&fc);
	return rc;
}

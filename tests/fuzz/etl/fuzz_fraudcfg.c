/* libFuzzer target: the ETL configuration with its fraud: and alerts:
 * sections (etl/config.c's key table, lib/cfg.c's binding, etl/fraudcfg.c's
 * key tables and hooks) on arbitrary bytes.  Checks: a refusal has a
 * reason; a configuration the ETL accepts in its one pass is accepted by
 * fraud_config_load_string() alone with the same rules (the same JSON);
 * nothing leaks (ASan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "config.h"
#include "fraudcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etl_config cfg;
	char err[1024] = "";
	memset(&cfg, 0, sizeof cfg);
	int rc = cfg_load_string(etl_keys, &cfg, "fuzz", (const char *)data, size, err, sizeof err);
	if (rc < 0 && !err[0])
		abort(); /* refused without a reason */
	struct fraud_config alone;
	char err2[1024] = "";
	int rc2 = fraud_config_load_string("fuzz", (const char *)data, size, &alone, err2, sizeof err2);
	if (rc2 < 0 && !err2[0])
		abort();
	if (rc == 0) {
		if (rc2 < 0)
			abort(); /* the one pass accepted what the sections alone refuse */
		char *a = fraud_config_json(&cfg.fraud), *b = fraud_config_json(&alone);
		if (strcmp(a, b))
			abort();
		free(a);
		free(b);
	}
	fraud_config_free(&alone);
	etl_config_free(&cfg);
	return 0;
}

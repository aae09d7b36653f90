/*
 * fraudcfg.h - the fraud: and alerts: sections of the ETL configuration.
 *
 * Both are described by lib/cfg.c key tables (fraudcfg.c) and bound by the
 * two hooks below, which etl/config.c's table names: the ETL parses its
 * configuration file once.  Unknown keys, wrong types, out-of-range values
 * and duplicate rule names are errors with "file:line:col: message".
 * fraud_config_load() reads just these two sections of a file (tests,
 * tools), and fraud_config_sync() writes the result into
 * the warehouse (fraud_setting, fraud_rule, fraud_tenant_limit, see
 * sql/0008_fraud_alerts.sql) in one statement, replacing what was there.
 * The YAML is described in docs/metrics.md, "Fraud and alerts".
 *
 * Ownership: a loaded struct fraud_config owns every string and array in
 * it; release with fraud_config_free() (also safe after a failed load).
 */
#ifndef CDRFLOW_ETL_FRAUDCFG_H
#define CDRFLOW_ETL_FRAUDCFG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct fraud_rule_cfg {
	char *name;
	char *kind;
	int enabled;
	char *severity;
	uint64_t snooze_ms;
	char *params_json; /* a JSON object with the kind's parameters, defaults filled in */
};

struct fraud_tenant_limit_cfg {
	char *tenant;          /* "*" = every tenant without its own entry */
	double allowance_minutes; /* < 0: none */
	int64_t max_concurrent;   /* < 0: none */
	int64_t max_cps;          /* < 0: none */
};

struct fraud_config {
	char **outbound_contexts;
	size_t n_outbound;
	char **inbound_contexts;
	size_t n_inbound;
	uint64_t max_call_ms;
	struct fraud_rule_cfg *rules;
	size_t nrules;
	struct fraud_tenant_limit_cfg *limits;
	size_t nlimits;
	/* the files' defaults of the rules' snooze (fraud.snooze, alerts.snooze) */
	uint64_t fraud_snooze_ms;
	uint64_t alerts_snooze_ms;
};

/* CFG_CUSTOM hooks of the "fraud" and "alerts" keys of a configuration's
 * key table (listed in that order); the key's offset is a struct
 * fraud_config's.  The fraud hook initialises and frees it. */
extern const struct cfg_hook fraud_section_hook;
extern const struct cfg_hook alerts_section_hook;

/* Load and validate the fraud: and alerts: sections of the YAML file path
 * (other top-level keys are left to etl_config_load).  A file without them
 * gives an empty configuration (no rules).  Returns 0, or -1 with a one-line
 * message in err; out is always safe to pass to fraud_config_free(). */
int fraud_config_load(const char *path, struct fraud_config *out, char *err, size_t errlen);
/* The same from a string (tests); name is used in messages. */
int fraud_config_load_string(const char *name, const char *yaml, size_t len, struct fraud_config *out, char *err,
			     size_t errlen);
/* The configuration as the JSON document fraud_config_apply(jsonb) takes;
 * malloc'ed, caller frees. */
char *fraud_config_json(const struct fraud_config *fc);
/* Replace the warehouse's rule rows with fc in one statement (so in one
 * transaction).  0, or -1 with "SQLSTATE: message" in err. */
int fraud_config_sync(PGconn *c, const struct fraud_config *fc, char *err, size_t errlen);
void fraud_config_free(struct fraud_config *fc);

#endif

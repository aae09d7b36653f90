/*
 * config.h - cdrflow-etl settings (key table in config.c).
 */
#ifndef CDRFLOW_ETL_CONFIG_H
#define CDRFLOW_ETL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct etl_config {
	char *spool;
	char *log_level;
	char *log_file;
	char *conninfo;
	int64_t batch_events;
	char *ami_event_include;
	char *ami_event_exclude;
	uint64_t grace_ms;
	uint64_t poll_ms;
	/* cdr.conf options that change Asterisk's CDR output */
	int cdr_unanswered;
	int cdr_congestion;
	int cdr_endbeforehexten;
	int cdr_initiatedseconds;
};

extern const struct cfg_key etl_keys[];

/* Returns 0, EXIT_NOINPUT or EXIT_CONFIG with a message in err. */
int etl_config_load(struct etl_config *cfg, const char *path, char *err, size_t errlen);
void etl_config_free(struct etl_config *cfg);
/* Is this AMI event name kept in ami_event under the include/exclude lists? */
int etl_keep_event(const struct etl_config *cfg, const char *name, size_t len);

#endif

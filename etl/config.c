#include "config.h"

#include <string.h>
#include <strings.h>

#include "exitcode.h"
#include "log.h"

#define E(f) offsetof(struct etl_config, f)
const struct cfg_key etl_keys[] = {
	{ "spool", CFG_STRING, E(spool), "/var/spool/cdrflow", 0, 0, NULL, "the collector's spool directory", 0, NULL, 0, 0 },
	{ "log.level", CFG_STRING, E(log_level), "info", 0, 0, NULL, "error, warn, info or debug", 0, NULL, 0, 0 },
	{ "log.file", CFG_STRING, E(log_file), NULL, 0, 0, NULL, "log file (empty: stderr)", 0, NULL, 0, 0 },
	{ "database.conninfo", CFG_STRING, E(conninfo), NULL, 0, 0, NULL, "libpq connection string (empty: the PG* environment); keep passwords in PGPASSWORD or ~/.pgpass", 0, NULL, 0, 0 },
	{ "etl.batch_events", CFG_INT, E(batch_events), "100000", 100, 100000000, NULL, "events per transaction", 0, NULL, 0, 0 },
	{ "etl.ami_event_include", CFG_STRING, E(ami_event_include), NULL, 0, 0, NULL, "comma-separated AMI events kept in ami_event (empty: all but the excluded)", 0, NULL, 0, 0 },
	{ "etl.ami_event_exclude", CFG_STRING, E(ami_event_exclude), "CEL,VarSet,Newexten,Newstate,NewCallerid,NewConnectedLine,NewAccountCode", 0, 0, NULL, "comma-separated AMI events left in the segments only", 0, NULL, 0, 0 },
	{ "etl.poll_interval", CFG_DURATION, E(poll_ms), "1s", 10, 3600000, NULL, "--follow: how often to look for new records", 0, NULL, 0, 0 },
	{ "etl.grace_period", CFG_DURATION, E(grace_ms), "4h", 60000, (int64_t)30 * 86400000, NULL, "close a call with no LINKEDID_END after this long, flagged incomplete", 0, NULL, 0, 0 },
	{ "cdr.unanswered", CFG_BOOL, E(cdr_unanswered), "no", 0, 0, NULL, "cdr.conf unanswered", 0, NULL, 0, 0 },
	{ "cdr.congestion", CFG_BOOL, E(cdr_congestion), "no", 0, 0, NULL, "cdr.conf congestion", 0, NULL, 0, 0 },
	{ "cdr.endbeforehexten", CFG_BOOL, E(cdr_endbeforehexten), "yes", 0, 0, NULL, "cdr.conf endbeforehexten", 0, NULL, 0, 0 },
	{ "cdr.initiatedseconds", CFG_BOOL, E(cdr_initiatedseconds), "no", 0, 0, NULL, "cdr.conf initiatedseconds", 0, NULL, 0, 0 },
	{ "collector", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "report", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "fraud", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },      /* fraudcfg.c checks it */
	{ "alerts", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },     /* fraudcfg.c checks it */
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef E

int etl_config_load(struct etl_config *cfg, const char *path, char *err, size_t errlen)
{
	int missing = 0;
	memset(cfg, 0, sizeof *cfg);
	if (cfg_load(etl_keys, cfg, path, &missing, err, errlen) < 0)
		return missing ? EXIT_NOINPUT : EXIT_CONFIG;
	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "%s: log.level: \"%s\" must be one of error, warn, info, debug",
			 path ? path : "configuration", cfg->log_level);
		return EXIT_CONFIG;
	}
	return 0;
}

void etl_config_free(struct etl_config *cfg)
{
	cfg_free(etl_keys, cfg);
}

static int in_list(const char *list, const char *name, size_t len)
{
	const char *p = list;
	while (*p) {
		while (*p == ',' || *p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if ((size_t)(e - p) == len && !strncasecmp(p, name, len))
			return 1;
		p = e;
	}
	return 0;
}

int etl_keep_event(const struct etl_config *cfg, const char *name, size_t len)
{
	if (*cfg->ami_event_include && !in_list(cfg->ami_event_include, name, len))
		return 0;
	return !in_list(cfg->ami_event_exclude, name, len);
}

/*
 * config.h - cdrflow-etl settings (key table in config.c).
 */
#ifndef CDRFLOW_ETL_CONFIG_H
#define CDRFLOW_ETL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cdrengine.h"
#include "cfg.h"
#include "fraudcfg.h"
#include "sources.h"

/* tenants.rules[]: the first rule whose given fields all match names the tenant */
struct tenant_rule {
	char *tenant;
	char *accountcode; /* glob on the leg's accountcode (Party A) */
	char *context;     /* glob on dcontext */
	char *channel;     /* glob on channel or dstchannel (trunk or extension) */
	char *did;         /* glob on dst, as dialled or as E.164 */
};

/* tenants.allowances[]: prepaid-style minutes per billing month */
struct tenant_allowance {
	char *tenant;
	int64_t minutes;
};

/* numbering[]: how a tenant's numbers become E.164 ("" = every other tenant) */
struct number_plan {
	char *tenant;
	char *country_code;         /* e.g. 44 */
	char *country;              /* ISO code of home (NULL: the country of +country_code) */
	char *national_prefix;      /* e.g. 0 */
	char *international_prefix; /* e.g. 00 or 011 */
	char *strip_prefixes;       /* comma-separated tech prefixes removed first, e.g. 9 */
	int64_t min_length;         /* shorter digit strings are extensions, not numbers */
};

/* rating.buy[]: a carrier's deck and the trunk(s) its traffic leaves by */
struct carrier_deck {
	char *carrier;
	char *deck;  /* CSV file (docs/rating.md) */
	char *trunk; /* glob on dstchannel, e.g. SIP/carrierX-* */
	char *currency; /* ISO 4217 (NULL: rating.currency) */
};

/* rating.sell[]: a tenant's price list */
struct tenant_deck {
	char *tenant;
	char *deck;
	char *currency; /* ISO 4217 (NULL: rating.currency) */
};

/* tenants.profiles[]: what a statement calls the tenant */
struct tenant_profile {
	char *tenant;
	char *name; /* display name */
};

struct etl_config {
	char *spool;
	char *log_level;
	char *log_file;
	char *conninfo;
	int64_t batch_events;
	char *ami_event_include;
	char *ami_event_exclude;
	int ami_event_store; /* enum ami_event_store */
	int analytics_overlap; /* analytics on their own connection (etl/analyst.h) */
	uint64_t grace_ms;
	uint64_t poll_ms;
	/* cdr.conf options that change Asterisk's CDR output */
	int cdr_unanswered;
	int cdr_congestion;
	int cdr_endbeforehexten;
	int cdr_initiatedseconds;
	int cdr_channeldefaultenabled;
	int cdr_ignorestatechanges;
	int cdr_ignoredialchanges;
	int cdr_canceldispositionenabled;
	/* tenants, numbers, rating (legclass.c) */
	char *tenant_default;
	struct tenant_rule *tenant_rules;
	size_t n_tenant_rules;
	struct tenant_allowance *allowances;
	size_t n_allowances;
	char *trunks; /* comma-separated globs: channels that are trunks (direction) */
	struct number_plan *plans;
	size_t n_plans;
	struct carrier_deck *carriers;
	size_t n_carriers;
	struct tenant_deck *sells;
	size_t n_sells;
	char *currency; /* rating.currency: ISO 4217 of every deck without its own (NULL: XXX, none) */
	struct tenant_profile *profiles;
	size_t n_profiles;
	/* the `sources:` list (sources.h): kamailio ones are read by
	 * etl/kamload.c, yeastar ones come through the spool */
	struct source_config *sources;
	size_t nsources;
	/* fraud: and alerts: (fraudcfg.c), read in the same pass */
	struct fraud_config fraud;
};

extern const struct cfg_key etl_keys[];

/* Returns 0, EXIT_NOINPUT or EXIT_CONFIG with a message in err. */
int etl_config_load(struct etl_config *cfg, const char *path, char *err, size_t errlen);
void etl_config_free(struct etl_config *cfg);
/* A deck's currency: its own, else rating.currency, else "XXX" (ISO 4217: none). */
const char *etl_deck_currency(const struct etl_config *cfg, const char *deck_currency);
/* The cdr: section as the CDR engine's options (the one place that maps them). */
struct cdr_options etl_cdr_options(const struct etl_config *cfg);
/* The `sources:` item of a node, NULL for an AMI node. */
const struct source_config *etl_source(const struct etl_config *cfg, const char *node);
enum ami_event_store { AMI_EVENT_STORE_ALL, AMI_EVENT_STORE_ANALYTICS };
/* Is this AMI event name kept in ami_event under the include/exclude lists
 * and etl.ami_event_store? */
int etl_keep_event(const struct etl_config *cfg, const char *name, size_t len);

#endif

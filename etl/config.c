#include "config.h"

#include <string.h>
#include <strings.h>

#include "exitcode.h"
#include "log.h"

#define R(f) offsetof(struct tenant_rule, f)
static const struct cfg_key tenant_rule_keys[] = {
	{ "tenant", CFG_STRING, R(tenant), NULL, 0, 0, NULL, "the tenant this rule assigns", CFG_REQUIRED, NULL, 0, 0 },
	{ "accountcode", CFG_STRING, R(accountcode), NULL, 0, 0, NULL, "glob on the leg's accountcode", 0, NULL, 0, 0 },
	{ "context", CFG_STRING, R(context), NULL, 0, 0, NULL, "glob on the leg's dcontext", 0, NULL, 0, 0 },
	{ "channel", CFG_STRING, R(channel), NULL, 0, 0, NULL, "glob on the leg's channel or dstchannel", 0, NULL, 0, 0 },
	{ "did", CFG_STRING, R(did), NULL, 0, 0, NULL, "glob on the leg's dst, as dialled or E.164", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef R
#define A(f) offsetof(struct tenant_allowance, f)
static const struct cfg_key allowance_keys[] = {
	{ "tenant", CFG_STRING, A(tenant), NULL, 0, 0, NULL, "tenant", CFG_REQUIRED, NULL, 0, 0 },
	{ "minutes", CFG_INT, A(minutes), NULL, 0, INT64_C(1000000000), NULL, "minutes per calendar month", CFG_REQUIRED, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef A
#define P(f) offsetof(struct number_plan, f)
static const struct cfg_key plan_keys[] = {
	{ "tenant", CFG_STRING, P(tenant), "", 0, 0, NULL, "tenant this plan is for (empty: every other tenant)", 0, NULL, 0, 0 },
	{ "country_code", CFG_STRING, P(country_code), NULL, 0, 0, NULL, "country calling code, e.g. 44", CFG_REQUIRED, NULL, 0, 0 },
	{ "country", CFG_STRING, P(country), NULL, 0, 0, NULL, "ISO code of the home country (default: the country of +country_code); other countries are international", 0, NULL, 0, 0 },
	{ "national_prefix", CFG_STRING, P(national_prefix), "0", 0, 0, NULL, "trunk prefix of national numbers", 0, NULL, 0, 0 },
	{ "international_prefix", CFG_STRING, P(international_prefix), "00", 0, 0, NULL, "international access prefix (00, 011)", 0, NULL, 0, 0 },
	{ "strip_prefixes", CFG_STRING, P(strip_prefixes), NULL, 0, 0, NULL, "comma-separated tech prefixes removed first (e.g. 9 for an outside line)", 0, NULL, 0, 0 },
	{ "min_length", CFG_INT, P(min_length), "7", 1, 15, NULL, "shorter digit strings are extensions, not numbers", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef P
#define B(f) offsetof(struct carrier_deck, f)
static const struct cfg_key carrier_keys[] = {
	{ "carrier", CFG_STRING, B(carrier), NULL, 0, 0, NULL, "carrier name", CFG_REQUIRED, NULL, 0, 0 },
	{ "deck", CFG_STRING, B(deck), NULL, 0, 0, NULL, "rate deck CSV (docs/rating.md)", CFG_REQUIRED, NULL, 0, 0 },
	{ "trunk", CFG_STRING, B(trunk), NULL, 0, 0, NULL, "glob on dstchannel: legs leaving by this carrier", CFG_REQUIRED, NULL, 0, 0 },
	{ "currency", CFG_STRING, B(currency), NULL, 0, 0, NULL, "ISO 4217 currency of the deck (default: rating.currency)", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef B
#define S(f) offsetof(struct tenant_deck, f)
static const struct cfg_key sell_keys[] = {
	{ "tenant", CFG_STRING, S(tenant), NULL, 0, 0, NULL, "tenant", CFG_REQUIRED, NULL, 0, 0 },
	{ "deck", CFG_STRING, S(deck), NULL, 0, 0, NULL, "rate deck CSV the tenant is charged by", CFG_REQUIRED, NULL, 0, 0 },
	{ "currency", CFG_STRING, S(currency), NULL, 0, 0, NULL, "ISO 4217 currency of the deck (default: rating.currency)", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef S
#define T(f) offsetof(struct tenant_profile, f)
static const struct cfg_key profile_keys[] = {
	{ "tenant", CFG_STRING, T(tenant), NULL, 0, 0, NULL, "tenant", CFG_REQUIRED, NULL, 0, 0 },
	{ "name", CFG_STRING, T(name), NULL, 0, 0, NULL, "the tenant's name on its statements", 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef T

static const char *const ami_event_store_names[] = { "all", "analytics", NULL };
#define E(f) offsetof(struct etl_config, f)
const struct cfg_key etl_keys[] = {
	{ "spool", CFG_STRING, E(spool), "/var/spool/cdrflow", 0, 0, NULL, "the collector's spool directory", 0, NULL, 0, 0 },
	{ "log.level", CFG_STRING, E(log_level), "info", 0, 0, NULL, "error, warn, info or debug", 0, NULL, 0, 0 },
	{ "log.file", CFG_STRING, E(log_file), NULL, 0, 0, NULL, "log file (empty: stderr)", 0, NULL, 0, 0 },
	{ "database.conninfo", CFG_STRING, E(conninfo), NULL, 0, 0, NULL, "libpq connection string (empty: the PG* environment); keep passwords in PGPASSWORD or ~/.pgpass", 0, NULL, 0, 0 },
	{ "etl.batch_events", CFG_INT, E(batch_events), "100000", 100, 100000000, NULL, "events per transaction", 0, NULL, 0, 0 },
	{ "etl.ami_event_include", CFG_STRING, E(ami_event_include), NULL, 0, 0, NULL, "comma-separated AMI events kept in ami_event (empty: all but the excluded)", 0, NULL, 0, 0 },
	{ "etl.ami_event_exclude", CFG_STRING, E(ami_event_exclude), "CEL,VarSet,Newexten,Newstate,NewCallerid,NewConnectedLine,NewAccountCode", 0, 0, NULL, "comma-separated AMI events left in the segments only", 0, NULL, 0, 0 },
	{ "etl.ami_event_store", CFG_ENUM, E(ami_event_store), "analytics", 0, 0, ami_event_store_names, "analytics (default): only the events the shipped analytics read from ami_event (QoS, queues, hangups, Yeastar), the chatty channel events stay in the segments; all: every event the include/exclude lists keep", 0, NULL, 0, 0 },
	{ "etl.analytics_overlap", CFG_BOOL, E(analytics_overlap), "yes", 0, 0, NULL, "run a batch's analytics on a second connection while the next batch loads (no: in the batch's own transaction)", 0, NULL, 0, 0 },
	{ "etl.poll_interval", CFG_DURATION, E(poll_ms), "1s", 10, 3600000, NULL, "--follow: how often to look for new records", 0, NULL, 0, 0 },
	{ "etl.grace_period", CFG_DURATION, E(grace_ms), "4h", 60000, (int64_t)30 * 86400000, NULL, "close a call with no LINKEDID_END after this long, flagged incomplete", 0, NULL, 0, 0 },
	{ "cdr.unanswered", CFG_BOOL, E(cdr_unanswered), "no", 0, 0, NULL, "cdr.conf unanswered", 0, NULL, 0, 0 },
	{ "cdr.congestion", CFG_BOOL, E(cdr_congestion), "no", 0, 0, NULL, "cdr.conf congestion", 0, NULL, 0, 0 },
	{ "cdr.endbeforehexten", CFG_BOOL, E(cdr_endbeforehexten), "yes", 0, 0, NULL, "cdr.conf endbeforehexten", 0, NULL, 0, 0 },
	{ "cdr.initiatedseconds", CFG_BOOL, E(cdr_initiatedseconds), "no", 0, 0, NULL, "cdr.conf initiatedseconds", 0, NULL, 0, 0 },
	{ "cdr.channeldefaultenabled", CFG_BOOL, E(cdr_channeldefaultenabled), "yes", 0, 0, NULL, "cdr.conf channeldefaultenabled", 0, NULL, 0, 0 },
	{ "cdr.ignorestatechanges", CFG_BOOL, E(cdr_ignorestatechanges), "no", 0, 0, NULL, "cdr.conf ignorestatechanges", 0, NULL, 0, 0 },
	{ "cdr.ignoredialchanges", CFG_BOOL, E(cdr_ignoredialchanges), "no", 0, 0, NULL, "cdr.conf ignoredialchanges", 0, NULL, 0, 0 },
	{ "cdr.canceldispositionenabled", CFG_BOOL, E(cdr_canceldispositionenabled), "no", 0, 0, NULL, "cdr.conf canceldispositionenabled (Asterisk 20.7+)", 0, NULL, 0, 0 },
	{ "tenants.default", CFG_STRING, E(tenant_default), NULL, 0, 0, NULL, "tenant of legs no rule matches (empty: none)", 0, NULL, 0, 0 },
	{ "tenants.rules", CFG_LIST, E(tenant_rules), NULL, 0, 0, NULL, "tenant assignment rules, first match wins", 0, tenant_rule_keys, sizeof(struct tenant_rule), E(n_tenant_rules) },
	{ "tenants.allowances", CFG_LIST, E(allowances), NULL, 0, 0, NULL, "minutes per tenant per calendar month", 0, allowance_keys, sizeof(struct tenant_allowance), E(n_allowances) },
	{ "tenants.profiles", CFG_LIST, E(profiles), NULL, 0, 0, NULL, "per tenant: its name on statements", 0, profile_keys, sizeof(struct tenant_profile), E(n_profiles) },
	{ "tenants.trunks", CFG_STRING, E(trunks), NULL, 0, 0, NULL, "comma-separated globs of trunk channels (decides direction)", 0, NULL, 0, 0 },
	{ "numbering", CFG_LIST, E(plans), NULL, 0, 0, NULL, "numbering plans: how numbers become E.164", 0, plan_keys, sizeof(struct number_plan), E(n_plans) },
	{ "rating.currency", CFG_STRING, E(currency), NULL, 0, 0, NULL, "ISO 4217 currency of the decks (e.g. EUR; empty: XXX, no currency)", 0, NULL, 0, 0 },
	{ "rating.buy", CFG_LIST, E(carriers), NULL, 0, 0, NULL, "carrier rate decks (cost)", 0, carrier_keys, sizeof(struct carrier_deck), E(n_carriers) },
	{ "rating.sell", CFG_LIST, E(sells), NULL, 0, 0, NULL, "tenant rate decks (price)", 0, sell_keys, sizeof(struct tenant_deck), E(n_sells) },
	{ "collector", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "sources", CFG_LIST, E(sources), NULL, 0, 0, NULL, "PBXs and proxies that are not AMI nodes (docs/sources.md)", 0, source_item_keys, sizeof(struct source_config), E(nsources) },
	{ "delivery", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	{ "report", CFG_IGNORE, 0, NULL, 0, 0, NULL, "", 0, NULL, 0, 0 },
	/* key tables and hooks in fraudcfg.c: the file is parsed once */
	{ "fraud", CFG_CUSTOM, E(fraud), NULL, 0, 0, NULL, "fraud rules (docs/metrics.md)", 0, &fraud_section_hook, 0, 0 },
	{ "alerts", CFG_CUSTOM, E(fraud), NULL, 0, 0, NULL, "alert rules and tenant limits (docs/metrics.md)", 0, &alerts_section_hook, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0, 0 },
};
#undef E

static int iso4217(const char *s)
{
	return !s || !*s || (strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' &&
		      s[2] <= 'Z');
}

/* The first currency that is not an ISO 4217 code, or NULL. */
static const char *check_currencies(const struct etl_config *cfg)
{
	if (!iso4217(cfg->currency))
		return cfg->currency;
	for (size_t i = 0; i < cfg->n_carriers; i++)
		if (!iso4217(cfg->carriers[i].currency))
			return cfg->carriers[i].currency;
	for (size_t i = 0; i < cfg->n_sells; i++)
		if (!iso4217(cfg->sells[i].currency))
			return cfg->sells[i].currency;
	return NULL;
}

const char *etl_deck_currency(const struct etl_config *cfg, const char *deck_currency)
{
	return deck_currency && *deck_currency ? deck_currency : cfg->currency && *cfg->currency ? cfg->currency : "XXX";
}

int etl_config_load(struct etl_config *cfg, const char *path, char *err, size_t errlen)
{
	int missing = 0;
	memset(cfg, 0, sizeof *cfg);
	if (cfg_load(etl_keys, cfg, path, &missing, err, errlen) < 0)
		return missing ? EXIT_NOINPUT : EXIT_CONFIG;
	const char *bad = check_currencies(cfg);
	if (bad) {
		snprintf(err, errlen, "%s: rating: currency \"%s\" is not an ISO 4217 code (three capital letters, e.g. EUR)",
			 path ? path : "configuration", bad);
		return EXIT_CONFIG;
	}
	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen, "%s: log.level: \"%s\" must be one of error, warn, info, debug",
			 path ? path : "configuration", cfg->log_level);
		return EXIT_CONFIG;
	}
	if (sources_check(cfg->sources, cfg->nsources, NULL, 0, path, err, errlen) < 0)
		return EXIT_CONFIG;
	return 0;
}

const struct source_config *etl_source(const struct etl_config *cfg, const char *node)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (!strcmp(cfg->sources[i].name, node))
			return &cfg->sources[i];
	return NULL;
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

/* The events the shipped analytics read from ami_event (sql/: QoS, queues
 * and agents, the abandon check's hangups, a Yeastar node's extension and
 * call status).  Not the endpoint-state events: the loader hands those to
 * their step itself (etl/load.c is_state_event, sql/0062). */
static const char analytics_events[] =
	"RTCPSent,RTCPReceived,QueueCallerJoin,QueueCallerLeave,QueueCallerAbandon,AgentCalled,AgentConnect,"
	"AgentComplete,AgentRingNoAnswer,QueueMemberAdded,QueueMemberRemoved,QueueMemberPause,QueueMemberPaused,"
	"Hangup,HangupRequest,SoftHangupRequest,"
	"YeastarCallStatus,YeastarExtensionCallStatus,YeastarExtensionRegistration";

int etl_keep_event(const struct etl_config *cfg, const char *name, size_t len)
{
	if (*cfg->ami_event_include && !in_list(cfg->ami_event_include, name, len))
		return 0;
	if (cfg->ami_event_store == AMI_EVENT_STORE_ANALYTICS && !in_list(analytics_events, name, len))
		return 0;
	return !in_list(cfg->ami_event_exclude, name, len);
}

struct cdr_options etl_cdr_options(const struct etl_config *cfg)
{
	struct cdr_options o = {
		.unanswered = cfg->cdr_unanswered != 0,
		.congestion = cfg->cdr_congestion != 0,
		.endbeforehexten = cfg->cdr_endbeforehexten != 0,
		.initiatedseconds = cfg->cdr_initiatedseconds != 0,
		.nochanneldefault = cfg->cdr_channeldefaultenabled == 0,
		.ignorestatechanges = cfg->cdr_ignorestatechanges != 0,
		.ignoredialchanges = cfg->cdr_ignoredialchanges != 0,
		.canceldisposition = cfg->cdr_canceldispositionenabled != 0,
	};
	return o;
}

/*
 * legclass.h - what a leg means for the business: its tenant, direction,
 * numbers in E.164, the carrier it left by and what it cost and earned.
 *
 * Built once per run from the configuration (tenants, numbering, rating
 * sections; rate decks are read here), then applied to every finished leg
 * without allocating.
 */
#ifndef CDRFLOW_LEGCLASS_H
#define CDRFLOW_LEGCLASS_H

#include <stdbool.h>
#include <stdint.h>

#include "cdrengine.h"
#include "config.h"
#include "rating.h"

struct country_prefix {
	char prefix[8]; /* E.164 calling-code digits, e.g. "44", "1684" */
	char iso[4];    /* ISO 3166-1 alpha-2 (or an ITU "X?" code) */
};

struct legclass {
	const struct etl_config *cfg;
	struct rating_book book;
	int *buy_decimals, *sell_decimals; /* per cfg->carriers[i] / cfg->sells[i]: rate_deck_decimals() */
	char **trunks; /* globs */
	size_t ntrunks;
	struct country_prefix *countries; /* sorted by prefix; the warehouse's rollup_country_code */
	size_t ncountries;
};

struct leg_extra {
	const char *tenant;    /* NULL: none */
	const char *direction; /* inbound, outbound, internal, unknown */
	char src_e164[24], dst_e164[24]; /* "" when not a number */
	char trunk[64];        /* trunk of the leg ("SIP/loop"), "" when none */
	const char *country;   /* ISO code of dst_e164, NULL when none matches */
	bool src_intl, dst_intl; /* E.164 outside the tenant's home country */
	const char *carrier;   /* NULL: did not leave by a rated carrier trunk */
	const char *rate_status; /* NULL when not rated at all */
	bool has_buy, has_sell, has_margin;
	int64_t buy, sell, margin; /* micro-units */
	char buy_prefix[24], sell_prefix[24];
};

/* Returns 0, or -1 with a message (a rate deck that does not load). */
int legclass_init(struct legclass *lc, const struct etl_config *cfg, char *err, size_t errlen);
void legclass_release(struct legclass *lc);
void legclass_apply(const struct legclass *lc, const struct cdr_row *r, struct leg_extra *out);
/* The same for a leg from a source that says its direction and trunk
 * itself (a Yeastar CDR): direction and trunk replace the trunk globs and
 * the channel names when not NULL; tenant, E.164, country and rating are
 * the same code. */
void legclass_apply_source(const struct legclass *lc, const struct cdr_row *r, const char *direction,
			   const char *trunk, struct leg_extra *out);

/* Replace the country table: text of lines "PREFIX ISO" (the warehouse's
 * rollup_country_code, one table for every program).  Returns 0, or -1 with
 * a message (a malformed line).  Without a table every country is NULL. */
int legclass_set_countries(struct legclass *lc, const char *table, char *err, size_t errlen);

/* The trunk of a leg: the endpoint of its first non-Local side ("SIP/loop"
 * from "SIP/loop-0000001a", a trailing "<ZOMBIE>"-style tag and ";n" Local
 * half removed), the far side (dstchannel) first, the calling side first
 * for inbound legs; "" when both sides are Local or empty.  out: 64 bytes. */
void legclass_trunk(const char *channel, const char *dstchannel, const char *direction, char *out);

/* ISO code of the longest country prefix of e164 ("+4420..."); NULL. */
const char *legclass_country(const struct legclass *lc, const char *e164);

/* Is e164 ("+...", else false) outside the home country of the tenant's
 * numbering plan (its `country`, else the country of +country_code)?
 * Without a plan every E.164 number is (only +/00 numbers are E.164). */
bool legclass_international(const struct legclass *lc, const char *tenant, const char *e164);

/* E.164 of number under the plan for tenant ("" if it is not a number).
 * out must hold 24 bytes. */
void legclass_e164(const struct etl_config *cfg, const char *tenant, const char *number, char *out);

#endif

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

struct legclass {
	const struct etl_config *cfg;
	struct rating_book book;
	char **trunks; /* globs */
	size_t ntrunks;
};

struct leg_extra {
	const char *tenant;    /* NULL: none */
	const char *direction; /* inbound, outbound, internal, unknown */
	char src_e164[24], dst_e164[24]; /* "" when not a number */
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

/* E.164 of number under the plan for tenant ("" if it is not a number).
 * out must hold 24 bytes. */
void legclass_e164(const struct etl_config *cfg, const char *tenant, const char *number, char *out);

#endif

/*
 * profiles.h - the tenants' and carriers' money facts into the warehouse:
 * tenant_profile (name, currency, money decimals of the sell deck) and
 * carrier_profile (currency, decimals of the buy deck), migration 0019.
 * The reports read them for their headers, tiles and money precision
 * (docs/report.md, docs/rating.md).
 */
#ifndef CDRFLOW_ETL_PROFILES_H
#define CDRFLOW_ETL_PROFILES_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"
#include "legclass.h"

/* Replace both tables as a whole, in one transaction, from tenants.profiles,
 * rating.sell/buy (their currency) and lc's deck decimals.  A tenant of
 * tenants.profiles without a sell deck gets rating.currency.  0, or -1 with
 * err (the transaction rolled back). */
int profiles_sync(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, char *err, size_t errlen);

#endif

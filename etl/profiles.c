/*
 * profiles.c - tenant_profile and carrier_profile from the configuration
 * (profiles.h).
 */
#include "profiles.h"

#include <stdio.h>
#include <string.h>

#include "pgconn.h"

static int upsert(PGconn *c, const char *sql, const char *const *v, int n, char *err, size_t errlen)
{
	PGresult *r = NULL;
	int rc = pgc_exec_params(c, sql, n, v, &r, err, errlen);
	PQclear(r);
	return rc;
}

int profiles_sync(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, char *err, size_t errlen)
{
	if (pgc_exec(c, "BEGIN", err, errlen) < 0)
		return -1;
	if (pgc_exec(c, "DELETE FROM tenant_profile", err, errlen) < 0 ||
	    pgc_exec(c, "DELETE FROM carrier_profile", err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_sells; i++) {
		char scale[8];
		snprintf(scale, sizeof scale, "%d", lc->sell_decimals ? lc->sell_decimals[i] : 2);
		const char *v[3] = { cfg->sells[i].tenant, etl_deck_currency(cfg, cfg->sells[i].currency), scale };
		if (upsert(c,
			   "INSERT INTO tenant_profile (tenant, currency, money_scale) VALUES ($1, $2, $3) "
			   "ON CONFLICT (tenant) DO UPDATE SET currency = excluded.currency, money_scale = excluded.money_scale",
			   v, 3, err, errlen) < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_profiles; i++) {
		const char *v[3] = { cfg->profiles[i].tenant, cfg->profiles[i].name, etl_deck_currency(cfg, NULL) };
		if (upsert(c,
			   "INSERT INTO tenant_profile (tenant, name, currency) VALUES ($1, $2, $3) "
			   "ON CONFLICT (tenant) DO UPDATE SET name = excluded.name",
			   v, 3, err, errlen) < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_carriers; i++) {
		char scale[8];
		snprintf(scale, sizeof scale, "%d", lc->buy_decimals ? lc->buy_decimals[i] : 2);
		const char *v[3] = { cfg->carriers[i].carrier, etl_deck_currency(cfg, cfg->carriers[i].currency), scale };
		if (upsert(c,
			   "INSERT INTO carrier_profile (carrier, currency, money_scale) VALUES ($1, $2, $3) "
			   "ON CONFLICT (carrier) DO UPDATE SET currency = excluded.currency, "
			   "money_scale = greatest(carrier_profile.money_scale, excluded.money_scale)",
			   v, 3, err, errlen) < 0)
			goto fail;
	}
	if (pgc_exec(c, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;
fail:;
	char ignored[128];
	pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	return -1;
}

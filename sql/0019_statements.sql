-- 0019: reports a customer can receive (docs/report.md, docs/metrics.md).
--
-- Money has a currency and a precision: each tenant's sell deck and each
-- carrier's buy deck has an ISO 4217 currency (rating.currency, per deck
-- rating.sell[].currency / rating.buy[].currency) and the decimals its rates
-- are written with.  cdrflow-etl writes both here at every start, with the
-- tenant's display name (tenants.profiles[].name), replacing the tables as a
-- whole (like tenant_allowance).
--
-- Display rounding of money (metric_money) follows the rates: the most
-- decimals any deck's rates or connect fees have (at least 2), and a
-- non-zero amount never rounds to zero (it is then shown to the micro-unit),
-- so a loss of 0.0025 is never shown as 0.00.

CREATE TABLE tenant_profile (
	tenant      text PRIMARY KEY CHECK (tenant <> ''),
	name        text,                -- display name (NULL: the tenant id)
	currency    text NOT NULL DEFAULT 'XXX' CHECK (currency ~ '^[A-Z]{3}$'),
	money_scale integer NOT NULL DEFAULT 2 CHECK (money_scale BETWEEN 0 AND 6)
);

CREATE TABLE carrier_profile (
	carrier     text PRIMARY KEY CHECK (carrier <> ''),
	currency    text NOT NULL DEFAULT 'XXX' CHECK (currency ~ '^[A-Z]{3}$'),
	money_scale integer NOT NULL DEFAULT 2 CHECK (money_scale BETWEEN 0 AND 6)
);

-- ------------------------------------------------------------ money display

-- The display decimals of money: the most any deck's rates have, at least 2.
-- SECURITY DEFINER: a tenant reader (RLS, 0009) sees neither the carriers'
-- decks nor the other tenants' and must still round like everyone else; it
-- learns one small integer.
CREATE FUNCTION metric_money_scale() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
	SELECT greatest(2, coalesce((SELECT max(s) FROM (SELECT money_scale AS s FROM tenant_profile
							  UNION ALL SELECT money_scale FROM carrier_profile) x), 2))
$$;

-- Micro-units as currency at `scale` decimals (half away from zero); a
-- non-zero amount that would round to zero keeps all six decimals.
CREATE FUNCTION metric_money(micro numeric, scale integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN micro <> 0 AND round(micro / 1000000.0, scale) = 0 THEN round(micro / 1000000.0, 6)
		    ELSE round(micro / 1000000.0, scale) END
$$;

-- The one display rule every tool uses (query stats, the reports): the
-- whole current body (0016's rounded to cents).
CREATE OR REPLACE FUNCTION metric_money(micro numeric) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT metric_money(micro, metric_money_scale())
$$;

-- The currency of every deck ("EUR", or "EUR/GBP" when they differ; NULL:
-- no deck configured, or none with a currency: XXX, ISO 4217's "no
-- currency", is not shown).  SECURITY DEFINER for the reason above.
CREATE FUNCTION metric_currency() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
	SELECT string_agg(DISTINCT c, '/' ORDER BY c)
	FROM (SELECT currency AS c FROM tenant_profile UNION SELECT currency FROM carrier_profile) x
	WHERE c <> 'XXX'
$$;

-- What a report's header shows for a tenant (NULL: every tenant): the
-- tenant's display name, the currency its amounts are in and the money
-- decimals.  Security invoker: a tenant reader sees its own profile only.
CREATE FUNCTION cdrflow_report_context(p_tenant text)
RETURNS TABLE (tenant_name text, currency text, money_scale integer)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_tenant IS NOT NULL
		    THEN coalesce((SELECT p.name FROM tenant_profile p WHERE p.tenant = p_tenant), p_tenant) END,
	       coalesce(CASE WHEN p_tenant IS NOT NULL
			     THEN (SELECT nullif(p.currency, 'XXX') FROM tenant_profile p WHERE p.tenant = p_tenant) END,
			metric_currency()),
	       metric_money_scale()
$$;

-- ------------------------------------------------------------ countries

-- A country's name from the one country table (rollup_country_code): the
-- name of its shortest prefix (US: "United States (NANP)"); NULL for NULL.
CREATE FUNCTION cdrflow_country_name(p_iso text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT c.name FROM rollup_country_code c WHERE c.iso = p_iso ORDER BY length(c.prefix), c.prefix LIMIT 1
$$;

-- ------------------------------------------------------------ ETL progress

-- The time up to which the calls are loaded: per node of etl_checkpoint the
-- later of the end of its latest loaded leg and its last commit (a pass
-- loads every record the spool holds, so at its commit it had what the PBX
-- sent until then), the earliest over the nodes; NULL when nothing was
-- loaded.  A report of a period ending after it says the period is not
-- completely loaded.  While the ETL works through a backlog, its last
-- commit overstates this (it says "loaded" up to a batch that is not the
-- last one): run it with --once or let --follow catch up first.
-- SECURITY DEFINER: readers may not read etl_checkpoint; they learn one
-- timestamp.
CREATE FUNCTION cdrflow_loaded_until() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
	SELECT min(greatest(c.updated_at,
			    (SELECT max(l.calldate + make_interval(secs => l.duration)) FROM cdr l WHERE l.node = c.node)))
	FROM etl_checkpoint c
$$;

-- readers: the profiles under RLS (their own tenant's row), the functions
SELECT cdrflow_tenant_rls();

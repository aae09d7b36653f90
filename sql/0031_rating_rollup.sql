-- 0031: the rating rollup (issue 15): the month statement (tenant-billing)
-- read three of its four sections from the month's carrier legs in cdr
-- (totals, per destination, rating status); rollup_rating_hourly holds
-- exactly the sums those sections take, per UTC hour, tenant, destination
-- and rating status, so a month is a few thousand rollup rows instead of
-- millions of legs.  Only legs with a carrier and a tenant (the sections'
-- own filter) are counted.  Maintained like rollup_hourly: an analytics
-- step adds the legs of the batch's calls (call_batch), once per call.
CREATE TABLE rollup_rating_hourly (
	hour        timestamptz NOT NULL, -- UTC hour of the legs' calldate
	tenant      text NOT NULL,        -- cdr.tenant (legs without one are not counted)
	destination text NOT NULL,        -- coalesce(sell_prefix, buy_prefix, '(unrated)')
	rate_status text NOT NULL,        -- cdr.rate_status, '' when NULL
	legs        bigint NOT NULL,      -- carrier legs
	billed_legs bigint NOT NULL,      -- ... with billsec > 0
	billsec     bigint,               -- sum(billsec) (NULL as sum() gives it)
	buy_cost    numeric,              -- sum(buy_cost), micro-units (NULL: none known)
	sell_cost   numeric,              -- sum(sell_cost), micro-units (NULL: none known)
	PRIMARY KEY (hour, tenant, destination, rate_status)
);
CREATE INDEX rollup_rating_hourly_tenant_idx ON rollup_rating_hourly (tenant, hour);

-- The analytics step (after rollup_after_batch, same batch, same calls).
CREATE FUNCTION rollup_rating_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_rating_hourly AS r
	SELECT date_trunc('hour', l.calldate, 'UTC'), l.tenant, coalesce(l.sell_prefix, l.buy_prefix, '(unrated)'),
	       coalesce(l.rate_status, ''), count(*), count(*) FILTER (WHERE l.billsec > 0), sum(l.billsec),
	       sum(l.buy_cost), sum(l.sell_cost)
	FROM call_batch b
	JOIN cdr l ON l.call_id = b.call_id AND l.node = b.node
	WHERE l.carrier IS NOT NULL AND l.tenant IS NOT NULL
	GROUP BY 1, 2, 3, 4
	ON CONFLICT (hour, tenant, destination, rate_status) DO UPDATE SET
		legs = r.legs + excluded.legs, billed_legs = r.billed_legs + excluded.billed_legs,
		-- NULL + x stays what sum() over both would give
		billsec = CASE WHEN r.billsec IS NULL THEN excluded.billsec
			       WHEN excluded.billsec IS NULL THEN r.billsec ELSE r.billsec + excluded.billsec END,
		buy_cost = CASE WHEN r.buy_cost IS NULL THEN excluded.buy_cost
				WHEN excluded.buy_cost IS NULL THEN r.buy_cost ELSE r.buy_cost + excluded.buy_cost END,
		sell_cost = CASE WHEN r.sell_cost IS NULL THEN excluded.sell_cost
				 WHEN excluded.sell_cost IS NULL THEN r.sell_cost ELSE r.sell_cost + excluded.sell_cost END;
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('rollup_rating_after_batch', 905);

-- the legs already loaded, from every call (as 0016 rebuilt rollup_hourly)
DROP TABLE IF EXISTS pg_temp.call_batch;
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
INSERT INTO call_batch SELECT * FROM call;
SELECT rollup_rating_after_batch('migration 0031', 0, 0);
DROP TABLE call_batch;

-- readers see their own tenant's rows, as in rollup_hourly (0009)
SELECT cdrflow_tenant_rls();

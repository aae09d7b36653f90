-- 0044: the month statement's per-destination section from the rating
-- rollup (issue 15).  tenant-billing's "Per destination" groups the
-- month's carrier legs by tenant, destination country and rate prefix; it
-- was the one section still reading every leg of the month (at 10 M legs a
-- month, seconds).  rollup_rating_hourly (0031) had the prefix but not the
-- country: it now keeps cdr.dst_country too ('' when none), so the section
-- is a few thousand rollup rows.  The rollup is rebuilt from the legs of
-- every closed call (a leg is counted when its call closes, as the step
-- does), here as 0031 built it.

ALTER TABLE rollup_rating_hourly ADD COLUMN country text NOT NULL DEFAULT '';
COMMENT ON COLUMN rollup_rating_hourly.country IS 'cdr.dst_country, '''' when NULL';
ALTER TABLE rollup_rating_hourly DROP CONSTRAINT rollup_rating_hourly_pkey;
ALTER TABLE rollup_rating_hourly ADD PRIMARY KEY (hour, tenant, destination, rate_status, country);

CREATE OR REPLACE FUNCTION rollup_rating_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_rating_hourly AS r
	SELECT date_trunc('hour', l.calldate, 'UTC'), l.tenant, coalesce(l.sell_prefix, l.buy_prefix, '(unrated)'),
	       coalesce(l.rate_status, ''), count(*), count(*) FILTER (WHERE l.billsec > 0), sum(l.billsec),
	       sum(l.buy_cost), sum(l.sell_cost), coalesce(l.dst_country, '')
	FROM call_batch b
	JOIN cdr l ON l.call_id = b.call_id AND l.node = b.node
	WHERE l.carrier IS NOT NULL AND l.tenant IS NOT NULL
	GROUP BY 1, 2, 3, 4, 10
	ON CONFLICT (hour, tenant, destination, rate_status, country) DO UPDATE SET
		legs = r.legs + excluded.legs, billed_legs = r.billed_legs + excluded.billed_legs,
		-- NULL + x stays what sum() over both would give
		billsec = CASE WHEN r.billsec IS NULL THEN excluded.billsec
			       WHEN excluded.billsec IS NULL THEN r.billsec ELSE r.billsec + excluded.billsec END,
		buy_cost = CASE WHEN r.buy_cost IS NULL THEN excluded.buy_cost
				WHEN excluded.buy_cost IS NULL THEN r.buy_cost ELSE r.buy_cost + excluded.buy_cost END,
		sell_cost = CASE WHEN r.sell_cost IS NULL THEN excluded.sell_cost
				 WHEN excluded.sell_cost IS NULL THEN r.sell_cost ELSE r.sell_cost + excluded.sell_cost END;
END $$;

-- rebuilt: the legs of every closed call (cdr and call are colocated by
-- node on Citus, so this join runs there as well)
TRUNCATE rollup_rating_hourly;
INSERT INTO rollup_rating_hourly (hour, tenant, destination, rate_status, legs, billed_legs, billsec, buy_cost,
				  sell_cost, country)
SELECT date_trunc('hour', l.calldate, 'UTC'), l.tenant, coalesce(l.sell_prefix, l.buy_prefix, '(unrated)'),
       coalesce(l.rate_status, ''), count(*), count(*) FILTER (WHERE l.billsec > 0), sum(l.billsec),
       sum(l.buy_cost), sum(l.sell_cost), coalesce(l.dst_country, '')
FROM cdr l
JOIN call c ON c.call_id = l.call_id AND c.node = l.node
WHERE l.carrier IS NOT NULL AND l.tenant IS NOT NULL
GROUP BY 1, 2, 3, 4, 10;

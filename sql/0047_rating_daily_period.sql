-- 0047: the month statement from daily rollups (issue 15).  tenant-billing
-- read rollup_rating_hourly for the whole month: where destinations are
-- many, about as many rows as the month has legs.
--
--   * rollup_rating_daily: rollup_rating_hourly summed per UTC day, kept by
--     the same step.
--   * cdrflow_period_split(from, to): where a period's whole UTC days and
--     whole UTC hours are; a reader takes the days from a daily rollup, the
--     hours left at either end from the hourly one and what is left from
--     the legs, so that any period in any --tz is exact.
--   * rollup_rating_period(from, to, tenant): the carrier legs' rating sums
--     of a period, so split, per tenant, destination, rate status and
--     country: the one home of "a period's rating" for every section that
--     reads it.

CREATE TABLE rollup_rating_daily (LIKE rollup_rating_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_rating_daily RENAME COLUMN hour TO day;
ALTER TABLE rollup_rating_daily ADD PRIMARY KEY (day, tenant, destination, rate_status, country);
CREATE INDEX rollup_rating_daily_tenant_idx ON rollup_rating_daily (tenant, day);
COMMENT ON TABLE rollup_rating_daily IS 'rollup_rating_hourly summed per UTC day';

-- The analytics step (0044's, which it restates): the batch's carrier legs
-- into the hourly rollup and, from the same sums, into the daily one.
CREATE OR REPLACE FUNCTION rollup_rating_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	WITH d AS (
		SELECT date_trunc('hour', l.calldate, 'UTC') AS hour, l.tenant,
		       coalesce(l.sell_prefix, l.buy_prefix, '(unrated)') AS destination,
		       coalesce(l.rate_status, '') AS rate_status, count(*) AS legs,
		       count(*) FILTER (WHERE l.billsec > 0) AS billed_legs, sum(l.billsec) AS billsec,
		       sum(l.buy_cost) AS buy_cost, sum(l.sell_cost) AS sell_cost, coalesce(l.dst_country, '') AS country
		FROM call_batch b
		-- the legs of the batch's call_ids found by index first (OFFSET 0: planned on their own, not probed row by row; see 0046)
		JOIN (SELECT * FROM cdr WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) l
		ON l.call_id = b.call_id AND l.node = b.node
		WHERE l.carrier IS NOT NULL AND l.tenant IS NOT NULL
		GROUP BY 1, 2, 3, 4, 10
	), h AS (
		INSERT INTO rollup_rating_hourly AS r SELECT * FROM d
		ON CONFLICT (hour, tenant, destination, rate_status, country) DO UPDATE SET
			legs = r.legs + excluded.legs, billed_legs = r.billed_legs + excluded.billed_legs,
			-- NULL + x stays what sum() over both would give
			billsec = CASE WHEN r.billsec IS NULL THEN excluded.billsec
				       WHEN excluded.billsec IS NULL THEN r.billsec ELSE r.billsec + excluded.billsec END,
			buy_cost = CASE WHEN r.buy_cost IS NULL THEN excluded.buy_cost
					WHEN excluded.buy_cost IS NULL THEN r.buy_cost ELSE r.buy_cost + excluded.buy_cost END,
			sell_cost = CASE WHEN r.sell_cost IS NULL THEN excluded.sell_cost
					 WHEN excluded.sell_cost IS NULL THEN r.sell_cost ELSE r.sell_cost + excluded.sell_cost END
	)
	INSERT INTO rollup_rating_daily AS r
	SELECT date_trunc('day', d.hour, 'UTC'), d.tenant, d.destination, d.rate_status, sum(d.legs), sum(d.billed_legs),
	       sum(d.billsec), sum(d.buy_cost), sum(d.sell_cost), d.country
	FROM d GROUP BY 1, 2, 3, 4, 10
	ON CONFLICT (day, tenant, destination, rate_status, country) DO UPDATE SET
		legs = r.legs + excluded.legs, billed_legs = r.billed_legs + excluded.billed_legs,
		billsec = CASE WHEN r.billsec IS NULL THEN excluded.billsec
			       WHEN excluded.billsec IS NULL THEN r.billsec ELSE r.billsec + excluded.billsec END,
		buy_cost = CASE WHEN r.buy_cost IS NULL THEN excluded.buy_cost
				WHEN excluded.buy_cost IS NULL THEN r.buy_cost ELSE r.buy_cost + excluded.buy_cost END,
		sell_cost = CASE WHEN r.sell_cost IS NULL THEN excluded.sell_cost
				 WHEN excluded.sell_cost IS NULL THEN r.sell_cost ELSE r.sell_cost + excluded.sell_cost END;
END $$;

-- [p_from, p_to) = legs [p_from, h0) + hours [h0, d0) + days [d0, d1) +
-- hours [d1, h1) + legs [h1, p_to), every bound a whole UTC hour (h) or
-- day (d).  A period without a whole hour is legs [p_from, p_to): h0 = d0
-- = d1 = h1 = p_to; one without a whole day has d0 = d1 = h1.  Durations
-- are added as hours, never as days (a day of --tz may have 23 or 25).
CREATE FUNCTION cdrflow_period_split(p_from timestamptz, p_to timestamptz,
				     OUT h0 timestamptz, OUT d0 timestamptz, OUT d1 timestamptz, OUT h1 timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	h0 := date_trunc('hour', p_from, 'UTC');
	IF h0 < p_from THEN
		h0 := h0 + interval '1 hour';
	END IF;
	h1 := date_trunc('hour', p_to, 'UTC');
	IF h0 >= h1 THEN
		h0 := p_to; d0 := p_to; d1 := p_to; h1 := p_to;
		RETURN;
	END IF;
	d0 := date_trunc('day', p_from, 'UTC');
	IF d0 < p_from THEN
		d0 := d0 + interval '24 hours';
	END IF;
	d1 := date_trunc('day', p_to, 'UTC');
	IF d0 >= d1 THEN
		d0 := h1; d1 := h1;
	END IF;
END $$;

-- The carrier legs' rating sums of [p_from, p_to) (every tenant when
-- p_tenant is NULL): the rollups' whole days and hours, the legs for the
-- rest.  Keys as the rollups keep them ('' for no rate status or country).
CREATE FUNCTION rollup_rating_period(p_from timestamptz, p_to timestamptz, p_tenant text)
RETURNS TABLE (tenant text, destination text, rate_status text, country text, legs bigint, billed_legs bigint,
	       billsec bigint, buy_cost numeric, sell_cost numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	s record;
BEGIN
	s := cdrflow_period_split(p_from, p_to);
	RETURN QUERY
	SELECT x.tenant, x.destination, x.rate_status, x.country, sum(x.legs)::bigint, sum(x.billed_legs)::bigint,
	       sum(x.billsec)::bigint, sum(x.buy_cost), sum(x.sell_cost)
	FROM (SELECT r.tenant, r.destination, r.rate_status, r.country, r.legs, r.billed_legs, r.billsec, r.buy_cost,
		     r.sell_cost
	      FROM rollup_rating_daily r
	      WHERE r.day >= s.d0 AND r.day < s.d1 AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      UNION ALL
	      SELECT r.tenant, r.destination, r.rate_status, r.country, r.legs, r.billed_legs, r.billsec, r.buy_cost,
		     r.sell_cost
	      FROM rollup_rating_hourly r
	      WHERE ((r.hour >= s.h0 AND r.hour < s.d0) OR (r.hour >= s.d1 AND r.hour < s.h1))
		AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      UNION ALL
	      SELECT l.tenant, coalesce(l.sell_prefix, l.buy_prefix, '(unrated)'), coalesce(l.rate_status, ''),
		     coalesce(l.dst_country, ''), 1, (l.billsec > 0)::int, l.billsec, l.buy_cost, l.sell_cost
	      FROM cdr l
	      WHERE ((l.calldate >= p_from AND l.calldate < s.h0) OR (l.calldate >= s.h1 AND l.calldate < p_to))
		AND l.carrier IS NOT NULL AND l.tenant IS NOT NULL AND (p_tenant IS NULL OR l.tenant = p_tenant)) x
	GROUP BY 1, 2, 3, 4;
END $$;

-- rebuilt from the hourly rollup (0044 rebuilt that one from the legs)
INSERT INTO rollup_rating_daily (day, tenant, destination, rate_status, legs, billed_legs, billsec, buy_cost,
				 sell_cost, country)
SELECT date_trunc('day', r.hour, 'UTC'), r.tenant, r.destination, r.rate_status, sum(r.legs), sum(r.billed_legs),
       sum(r.billsec), sum(r.buy_cost), sum(r.sell_cost), r.country
FROM rollup_rating_hourly r
GROUP BY 1, 2, 3, 4, 10;

-- readers see their own tenant's rows, as in rollup_hourly (0009)
SELECT cdrflow_tenant_rls();

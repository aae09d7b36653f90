-- 0052_rollups_by_index.sql - the rollup steps read the batch's calls,
-- not the month's (issue 15: a batch's cost depends on the batch).
--
-- rollup_after_batch and rollup_rating_after_batch join the session's
-- call_batch (a temp table: no statistics) with the month's call and cdr
-- partitions.  Measured on bench-etl's 2.15 M-event stream (auto_explain):
-- the planner scanned the whole call partition (and, for the rating
-- rollup, whose filter carrier/tenant IS NOT NULL it takes for rare, the
-- whole cdr partition) and hash- or merge-joined it with the batch, so each
-- batch cost more than the one before it (rating rollup 6 ms in the first
-- batches, 20-40 ms in the last; rollup 4 ms to 30 ms) and would cost
-- seconds at the end of a month of 10 M legs.  Each statement now joins
-- the batch with the legs of the batch's call_ids, found first on their
-- own by the call_id index (an array of the batch's call_ids; OFFSET 0
-- keeps the subquery planned apart: written as a mere extra condition,
-- the array went into the inner index scan of a nested loop, one probe
-- per element per outer row, 0.9 s in the first batch).  On Citus a
-- distributed table is not probed row by row from a session's table
-- either.  The join is the same, on the same keys: the same rows (the
-- subquery holds every leg the join can match).  Measured after: rating
-- rollup 2.5 ms in every batch, rollup 8-14 ms.
--
-- The bodies restated are the current ones (0046's rollup_after_batch with
-- buy_n/sell_n, 0047's rollup_rating_after_batch with the daily rollup,
-- 0046's rollup_call_after_batch, 0051's rollup_margin_after_batch); the
-- one change in each is how the batch's legs or calls are found.

CREATE OR REPLACE FUNCTION rollup_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	-- one statement: d (this batch's calls' legs summed per key) is
	-- computed once and feeds both upserts
	WITH d AS (
		SELECT v.hour, v.tenant, v.direction, v.disposition, v.country, v.trunk,
		       count(*) AS legs, coalesce(sum(v.billsec), 0) AS leg_billsec,
		       sum(v.attempt) AS calls,
		       sum(v.answered_attempt) AS answered,
		       sum(v.attempt_billsec) AS billsec,
		       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0) AS duration,
		       coalesce(sum(v.sell_cost), 0) AS sell_cost, coalesce(sum(v.buy_cost), 0) AS buy_cost,
		       sum(v.rated) AS rated,
		       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0) AS mos_sum,
		       count(v.mos) FILTER (WHERE v.is_call) AS mos_n,
		       count(v.buy_cost) AS buy_n, count(v.sell_cost) AS sell_n
		FROM call_batch b
		-- the legs of the batch's call_ids found by index first (0052; OFFSET 0: planned on their own, not probed row by row)
		JOIN (SELECT * FROM rollup_leg_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) v
		ON v.call_id = b.call_id AND v.node = b.node
		GROUP BY 1, 2, 3, 4, 5, 6
	), h AS (
		INSERT INTO rollup_hourly AS r SELECT * FROM d
		ON CONFLICT (hour, tenant, direction, disposition, country, trunk) DO UPDATE SET
			legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
			calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
			billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
			sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
			rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum,
			mos_n = r.mos_n + excluded.mos_n, buy_n = r.buy_n + excluded.buy_n,
			sell_n = r.sell_n + excluded.sell_n
	)
	INSERT INTO rollup_daily AS r
	SELECT date_trunc('day', d.hour, 'UTC'), d.tenant, d.direction, d.disposition, d.country, d.trunk,
	       sum(d.legs), sum(d.leg_billsec), sum(d.calls), sum(d.answered), sum(d.billsec), sum(d.duration),
	       sum(d.sell_cost), sum(d.buy_cost), sum(d.rated), sum(d.mos_sum), sum(d.mos_n), sum(d.buy_n),
	       sum(d.sell_n)
	FROM d GROUP BY 1, 2, 3, 4, 5, 6
	ON CONFLICT (day, tenant, direction, disposition, country, trunk) DO UPDATE SET
		legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
		calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
		billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
		sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
		rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum, mos_n = r.mos_n + excluded.mos_n,
		buy_n = r.buy_n + excluded.buy_n, sell_n = r.sell_n + excluded.sell_n;
END $$;

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
		-- the legs of the batch's call_ids found by index first (0052; OFFSET 0: planned on their own, not probed row by row)
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

CREATE OR REPLACE FUNCTION rollup_call_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_call_hourly AS r
	SELECT date_trunc('hour', k.start, 'UTC'), k.tenant, k.direction, k.country, k.trunk, count(*),
	       sum(k.answered_call)
	FROM call_batch b
	-- the batch's calls found by index first (0052; OFFSET 0: planned on their own, not probed row by row)
	JOIN (SELECT * FROM metric_call_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) k
	ON k.call_id = b.call_id AND k.node = b.node
	GROUP BY 1, 2, 3, 4, 5
	ON CONFLICT (hour, tenant, direction, country, trunk) DO UPDATE SET
		calls = r.calls + excluded.calls, answered_calls = r.answered_calls + excluded.answered_calls;
END $$;

CREATE OR REPLACE FUNCTION rollup_margin_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	WITH d AS (
		SELECT v.hour, v.tenant, v.country, v.carrier, count(*) AS legs, sum(v.rated) AS rated,
		       coalesce(sum(v.billsec) FILTER (WHERE v.rated = 1), 0) AS rated_billsec,
		       coalesce(sum(v.buy_cost), 0) AS buy_cost, coalesce(sum(v.sell_cost), 0) AS sell_cost,
		       count(v.buy_cost) AS buy_n, count(v.sell_cost) AS sell_n
		FROM call_batch b
		-- the legs of the batch's call_ids found by index first (0052; OFFSET 0: planned on their own, not probed row by row)
		JOIN (SELECT * FROM rollup_leg_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) v
		ON v.call_id = b.call_id AND v.node = b.node
		GROUP BY 1, 2, 3, 4
	), h AS (
		INSERT INTO rollup_margin_hourly AS r SELECT * FROM d
		ON CONFLICT (hour, tenant, country, carrier) DO UPDATE SET
			legs = r.legs + excluded.legs, rated = r.rated + excluded.rated,
			rated_billsec = r.rated_billsec + excluded.rated_billsec,
			buy_cost = r.buy_cost + excluded.buy_cost, sell_cost = r.sell_cost + excluded.sell_cost,
			buy_n = r.buy_n + excluded.buy_n, sell_n = r.sell_n + excluded.sell_n
	)
	INSERT INTO rollup_margin_daily AS r
	SELECT date_trunc('day', d.hour, 'UTC'), d.tenant, d.country, d.carrier, sum(d.legs), sum(d.rated),
	       sum(d.rated_billsec), sum(d.buy_cost), sum(d.sell_cost), sum(d.buy_n), sum(d.sell_n)
	FROM d GROUP BY 1, 2, 3, 4
	ON CONFLICT (day, tenant, country, carrier) DO UPDATE SET
		legs = r.legs + excluded.legs, rated = r.rated + excluded.rated,
		rated_billsec = r.rated_billsec + excluded.rated_billsec,
		buy_cost = r.buy_cost + excluded.buy_cost, sell_cost = r.sell_cost + excluded.sell_cost,
		buy_n = r.buy_n + excluded.buy_n, sell_n = r.sell_n + excluded.sell_n;
END $$;

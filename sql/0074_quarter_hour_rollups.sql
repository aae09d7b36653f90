-- 0074: quarter-hour rollups, for the hours a local day or hour cuts
-- (issue 15: `cdrflow-query stats --by day` over a month in Asia/Kolkata
-- took 4-7 s at 10 M legs a month).
--
-- A zone whose offset is not whole hours (Asia/Kolkata +05:30, Nepal
-- +05:45, Australia/Eucla +08:45, America/St_Johns -03:30) cuts one UTC
-- hour a day at its midnight, and every hour at its hour boundaries.  The
-- readers of the hourly rollups read those hours from the legs
-- (cdrflow_period_parts, 0059): 31 hours a month for --by day, the whole
-- month for --by hour, each leg joined to its call (rollup_leg_v needs the
-- call: the direction fallback).  Every offset in use today is a multiple
-- of 15 minutes, so a local day or hour boundary falls between two UTC
-- quarter hours.
--
--   * rollup_quarter_hour: rollup_hourly's sums per UTC quarter hour
--     (column quarter: its first instant, date_bin('15 minutes', calldate,
--     2000-01-01 00:00 UTC)), same keys, same columns, same definitions.
--   * rollup_call_quarter_hour: rollup_call_hourly's per quarter hour of
--     the call's start.
--   * rollup_after_batch and rollup_call_after_batch compute a batch's sums
--     per quarter hour once, upsert them, and sum those per hour (and day)
--     for rollup_hourly (and rollup_daily): the hourly rows are the same
--     sums of the same legs (integers and numeric: exact).
--   * cdrflow_period_parts(from, to, unit) gains part 'q': the whole UTC
--     quarter hours of a cut hour (and of the period's ends) that no local
--     boundary cuts, which a reader takes from the quarter-hour rollups.
--     Part 'l' (the legs) is left with the minutes off the quarter-hour grid
--     at either end, and quarter hours a local boundary cuts (an offset that
--     is not a multiple of 15 minutes: none in use since 1979).  A reader
--     that knows only 'r' and 'l' reads 'q' from the legs, as before:
--     the same sums.

CREATE TABLE rollup_quarter_hour (LIKE rollup_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_quarter_hour RENAME COLUMN hour TO quarter;
ALTER TABLE rollup_quarter_hour ADD PRIMARY KEY (quarter, tenant, direction, disposition, country, trunk);
CREATE INDEX rollup_quarter_hour_tenant_idx ON rollup_quarter_hour (tenant, quarter);
COMMENT ON TABLE rollup_quarter_hour IS 'rollup_hourly''s sums per UTC quarter hour of the legs'' calldate';
COMMENT ON COLUMN rollup_quarter_hour.quarter IS 'first instant of the UTC quarter hour: date_bin(''15 minutes'', calldate, ''2000-01-01 00:00+00'')';

CREATE TABLE rollup_call_quarter_hour (LIKE rollup_call_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_call_quarter_hour RENAME COLUMN hour TO quarter;
ALTER TABLE rollup_call_quarter_hour ADD PRIMARY KEY (quarter, tenant, direction, country, trunk);
CREATE INDEX rollup_call_quarter_hour_tenant_idx ON rollup_call_quarter_hour (tenant, quarter);
COMMENT ON TABLE rollup_call_quarter_hour IS 'rollup_call_hourly''s sums per UTC quarter hour of the call''s start';
COMMENT ON COLUMN rollup_call_quarter_hour.quarter IS 'first instant of the UTC quarter hour of the call''s start';

-- The quarter hour of an instant (UTC; the same in every zone).
CREATE FUNCTION cdrflow_quarter_hour(p_t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT date_bin('15 minutes', p_t, timestamptz '2000-01-01 00:00:00+00')
$$;

-- 0063's, with the batch's sums computed per quarter hour first: those
-- upserted into rollup_quarter_hour, summed per hour into rollup_hourly and
-- per day into rollup_daily.
CREATE OR REPLACE FUNCTION rollup_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	-- one statement: d (this batch's calls' legs summed per quarter hour
	-- and key) is computed once and feeds the three upserts
	WITH d AS (
		SELECT cdrflow_quarter_hour(v.calldate) AS quarter, v.tenant, v.direction, v.disposition, v.country,
		       v.trunk,
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
		FROM rollup_batch_legs() v -- the batch's legs, read once for every rollup step
		GROUP BY 1, 2, 3, 4, 5, 6
	), q AS (
		INSERT INTO rollup_quarter_hour AS r SELECT * FROM d
		ON CONFLICT (quarter, tenant, direction, disposition, country, trunk) DO UPDATE SET
			legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
			calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
			billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
			sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
			rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum,
			mos_n = r.mos_n + excluded.mos_n, buy_n = r.buy_n + excluded.buy_n,
			sell_n = r.sell_n + excluded.sell_n
	), hs AS (
		SELECT date_trunc('hour', d.quarter, 'UTC') AS hour, d.tenant, d.direction, d.disposition, d.country,
		       d.trunk, sum(d.legs) AS legs, sum(d.leg_billsec) AS leg_billsec, sum(d.calls) AS calls,
		       sum(d.answered) AS answered, sum(d.billsec) AS billsec, sum(d.duration) AS duration,
		       sum(d.sell_cost) AS sell_cost, sum(d.buy_cost) AS buy_cost, sum(d.rated) AS rated,
		       sum(d.mos_sum) AS mos_sum, sum(d.mos_n) AS mos_n, sum(d.buy_n) AS buy_n, sum(d.sell_n) AS sell_n
		FROM d GROUP BY 1, 2, 3, 4, 5, 6
	), h AS (
		INSERT INTO rollup_hourly AS r SELECT * FROM hs
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
	SELECT date_trunc('day', hs.hour, 'UTC'), hs.tenant, hs.direction, hs.disposition, hs.country, hs.trunk,
	       sum(hs.legs), sum(hs.leg_billsec), sum(hs.calls), sum(hs.answered), sum(hs.billsec), sum(hs.duration),
	       sum(hs.sell_cost), sum(hs.buy_cost), sum(hs.rated), sum(hs.mos_sum), sum(hs.mos_n), sum(hs.buy_n),
	       sum(hs.sell_n)
	FROM hs GROUP BY 1, 2, 3, 4, 5, 6
	ON CONFLICT (day, tenant, direction, disposition, country, trunk) DO UPDATE SET
		legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
		calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
		billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
		sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
		rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum, mos_n = r.mos_n + excluded.mos_n,
		buy_n = r.buy_n + excluded.buy_n, sell_n = r.sell_n + excluded.sell_n;
END $$;

-- 0046's, with the batch's calls summed per quarter hour first: those
-- upserted into rollup_call_quarter_hour, summed per hour into
-- rollup_call_hourly.
CREATE OR REPLACE FUNCTION rollup_call_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	WITH d AS (
		SELECT cdrflow_quarter_hour(k.start) AS quarter, k.tenant, k.direction, k.country, k.trunk,
		       count(*) AS calls, sum(k.answered_call) AS answered_calls
		FROM call_batch b
		-- the batch's calls found by index first (OFFSET 0: planned on their own, not probed row by row; see 0046)
		JOIN (SELECT * FROM metric_call_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) k
		ON k.call_id = b.call_id AND k.node = b.node
		GROUP BY 1, 2, 3, 4, 5
	), q AS (
		INSERT INTO rollup_call_quarter_hour AS r SELECT * FROM d
		ON CONFLICT (quarter, tenant, direction, country, trunk) DO UPDATE SET
			calls = r.calls + excluded.calls, answered_calls = r.answered_calls + excluded.answered_calls
	)
	INSERT INTO rollup_call_hourly AS r
	SELECT date_trunc('hour', d.quarter, 'UTC'), d.tenant, d.direction, d.country, d.trunk, sum(d.calls),
	       sum(d.answered_calls)
	FROM d GROUP BY 1, 2, 3, 4, 5
	ON CONFLICT (hour, tenant, direction, country, trunk) DO UPDATE SET
		calls = r.calls + excluded.calls, answered_calls = r.answered_calls + excluded.answered_calls;
END $$;

-- 0059's parts, on the quarter-hour grid.  Of [p_from, p_to), for a reader
-- keyed by local p_unit ('hour', 'day', or NULL for a key that is not a
-- time):
--   'r'  whole UTC hours that no local boundary cuts: the hourly rollups;
--   'q'  whole UTC quarter hours, of a cut hour or of the period's ends,
--        that no local boundary cuts: the quarter-hour rollups;
--   'l'  the rest (the minutes off the grid at either end, a cut quarter
--        hour): the legs.
-- Adjacent pieces of a part are merged.  Together the ranges cover the
-- period once.
CREATE OR REPLACE FUNCTION cdrflow_period_parts(p_from timestamptz, p_to timestamptz, p_unit text)
RETURNS TABLE (part text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE AS $$
	WITH g AS (
		-- the whole quarter hours of the period: [q0, q1)
		SELECT CASE WHEN cdrflow_quarter_hour(p_from) = p_from THEN p_from
			    ELSE cdrflow_quarter_hour(p_from) + interval '15 minutes' END AS q0,
		       cdrflow_quarter_hour(p_to) AS q1
	), qs AS (
		SELECT u AS lo, u + interval '15 minutes' AS hi,
		       date_trunc('hour', u, 'UTC') AS hour
		FROM g, generate_series(g.q0, g.q1 - interval '15 minutes', interval '15 minutes') u
		WHERE g.q0 < g.q1
	), hs AS (
		-- an hour whose four quarters are in the period, and that no
		-- local boundary cuts
		SELECT qs.hour FROM qs GROUP BY qs.hour
		HAVING count(*) = 4
		   AND (p_unit IS NULL OR date_trunc(p_unit, qs.hour)
					  = date_trunc(p_unit, qs.hour + interval '1 hour' - interval '1 microsecond'))
	), z AS (
		SELECT 'l' AS part, p_from AS lo, least(g.q0, p_to) AS hi FROM g
		UNION ALL SELECT 'l', greatest(g.q1, g.q0, p_from), p_to FROM g
		UNION ALL SELECT 'r', hs.hour, hs.hour + interval '1 hour' FROM hs
		UNION ALL
		SELECT CASE WHEN p_unit IS NOT NULL
			     AND date_trunc(p_unit, qs.lo) <> date_trunc(p_unit, qs.hi - interval '1 microsecond')
			    THEN 'l' ELSE 'q' END, qs.lo, qs.hi
		FROM qs WHERE qs.hour NOT IN (SELECT hs.hour FROM hs)
	), b AS (
		SELECT z.part, z.lo, z.hi,
		       z.lo > coalesce(max(z.hi) OVER (PARTITION BY z.part ORDER BY z.lo
						       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), '-infinity') AS brk
		FROM z WHERE z.lo < z.hi
	), i AS (
		SELECT b.part, b.lo, b.hi, count(*) FILTER (WHERE b.brk) OVER (PARTITION BY b.part ORDER BY b.lo) AS island
		FROM b
	)
	SELECT i.part, min(i.lo), max(i.hi) FROM i GROUP BY i.part, i.island ORDER BY 1, 2
$$;

-- built from the warehouse (the view, not a temp call_batch, so that this
-- also runs on a distributed schema)
INSERT INTO rollup_quarter_hour
SELECT cdrflow_quarter_hour(v.calldate), v.tenant, v.direction, v.disposition, v.country, v.trunk,
       count(*), coalesce(sum(v.billsec), 0), sum(v.attempt), sum(v.answered_attempt), sum(v.attempt_billsec),
       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0),
       coalesce(sum(v.sell_cost), 0), coalesce(sum(v.buy_cost), 0), sum(v.rated),
       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0), count(v.mos) FILTER (WHERE v.is_call),
       count(v.buy_cost), count(v.sell_cost)
FROM rollup_leg_v v
GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rollup_call_quarter_hour
SELECT cdrflow_quarter_hour(k.start), k.tenant, k.direction, k.country, k.trunk, count(*), sum(k.answered_call)
FROM metric_call_v k
GROUP BY 1, 2, 3, 4, 5;

-- readers see their own tenant's rows, as in rollup_hourly (0009)
SELECT cdrflow_tenant_rls();

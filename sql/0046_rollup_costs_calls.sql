-- 0046: a day's traffic from rollups (issue 15).  daily-traffic read the
-- day's legs twice and its calls once: at 10 M legs a month, seconds.
--
--   * rollup_hourly and rollup_daily count the legs with a buy cost and
--     with a sell cost (buy_n, sell_n).  Their cost sums are 0 where no leg
--     had one; with the counts a reader tells "no cost" (NULL, what sum()
--     over the legs gives) from a cost of 0, so the per-tenant table can
--     read the rollup.
--   * rollup_call_hourly: the rows of metric_call_v (a call counts in the
--     UTC hour of its start) and their answered_call, per tenant,
--     direction, destination country and trunk.  A call is in call_batch
--     once, in the batch that closes it (as for rollup_after_batch), and its
--     keys are read from the stored call after the earlier steps.
-- Both rollups are rebuilt from the warehouse here.
--
-- How a rollup step finds its batch (here, and in 0047's and 0051's steps):
-- call_batch is a temp table with no statistics, and joined with the
-- month's call or cdr partition the planner scanned the whole partition and
-- hash- or merge-joined it with the batch, so each batch cost more than the
-- one before it (bench-etl, 2.15 M events, auto_explain: the rating rollup
-- 6 ms in the first batches, 20-40 ms in the last; seconds at the end of a
-- 10 M-leg month).  Each step therefore joins the batch with the legs (or
-- calls) of the batch's call_ids, found first on their own by the call_id
-- index: an array of the batch's call_ids, and OFFSET 0 so that the
-- subquery is planned apart (written as a mere extra condition, the array
-- went into the inner index scan of a nested loop, one probe per element
-- per outer row).  On Citus a distributed table is not probed row by row
-- from a session's table either.  The join is on the same keys: the same
-- rows, since the subquery holds every leg the join can match.  Measured:
-- the rating rollup 2.5 ms in every batch, this rollup 8-14 ms.

ALTER TABLE rollup_hourly ADD COLUMN buy_n bigint NOT NULL DEFAULT 0,
			  ADD COLUMN sell_n bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_daily ADD COLUMN buy_n bigint NOT NULL DEFAULT 0,
			 ADD COLUMN sell_n bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN rollup_hourly.buy_n IS 'legs with a buy_cost (buy_cost is their sum; none: no buy cost)';
COMMENT ON COLUMN rollup_hourly.sell_n IS 'legs with a sell_cost (sell_cost is their sum; none: no sell cost)';
COMMENT ON COLUMN rollup_daily.buy_n IS 'legs with a buy_cost (buy_cost is their sum; none: no buy cost)';
COMMENT ON COLUMN rollup_daily.sell_n IS 'legs with a sell_cost (sell_cost is their sum; none: no sell cost)';

CREATE TABLE rollup_call_hourly (
	hour           timestamptz NOT NULL, -- UTC hour of the call's start
	tenant         text NOT NULL,        -- call.tenant, '' when NULL
	direction      text NOT NULL,        -- call.direction
	country        text NOT NULL,        -- call.dst_country, '' when NULL
	trunk          text NOT NULL,        -- call.trunk, '' when NULL
	calls          bigint NOT NULL,      -- calls (metric_call_v rows)
	answered_calls bigint NOT NULL,      -- their answered_call
	PRIMARY KEY (hour, tenant, direction, country, trunk)
);
CREATE INDEX rollup_call_hourly_tenant_idx ON rollup_call_hourly (tenant, hour);
COMMENT ON TABLE rollup_call_hourly IS 'metric_call_v summed per UTC hour of start x tenant x direction x country x trunk';

-- The analytics step: add this batch's calls' legs to both leg rollups, as
-- the sums of rollup_leg_v's contributions (0016's, with buy_n and sell_n).
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
		-- the legs of the batch's call_ids found by index first (OFFSET 0: planned on their own, not probed row by row; see 0046)
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

-- The analytics step: add this batch's calls to rollup_call_hourly.
CREATE FUNCTION rollup_call_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_call_hourly AS r
	SELECT date_trunc('hour', k.start, 'UTC'), k.tenant, k.direction, k.country, k.trunk, count(*),
	       sum(k.answered_call)
	FROM call_batch b
	-- the batch's calls found by index first (OFFSET 0: planned on their own, not probed row by row; see 0046)
	JOIN (SELECT * FROM metric_call_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) k
	ON k.call_id = b.call_id AND k.node = b.node
	GROUP BY 1, 2, 3, 4, 5
	ON CONFLICT (hour, tenant, direction, country, trunk) DO UPDATE SET
		calls = r.calls + excluded.calls, answered_calls = r.answered_calls + excluded.answered_calls;
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('rollup_call_after_batch', 910);

-- The rollups again, from the warehouse: rollup_after_batch's sums over
-- every call's legs, and rollup_call_after_batch's over every call (read
-- from the tables themselves rather than a temp call_batch, so that this
-- also runs on a distributed schema).
TRUNCATE rollup_hourly, rollup_daily;
INSERT INTO rollup_hourly
SELECT v.hour, v.tenant, v.direction, v.disposition, v.country, v.trunk,
       count(*), coalesce(sum(v.billsec), 0), sum(v.attempt), sum(v.answered_attempt), sum(v.attempt_billsec),
       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0),
       coalesce(sum(v.sell_cost), 0), coalesce(sum(v.buy_cost), 0), sum(v.rated),
       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0), count(v.mos) FILTER (WHERE v.is_call),
       count(v.buy_cost), count(v.sell_cost)
FROM rollup_leg_v v
GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rollup_daily
SELECT date_trunc('day', r.hour, 'UTC'), r.tenant, r.direction, r.disposition, r.country, r.trunk,
       sum(r.legs), sum(r.leg_billsec), sum(r.calls), sum(r.answered), sum(r.billsec), sum(r.duration),
       sum(r.sell_cost), sum(r.buy_cost), sum(r.rated), sum(r.mos_sum), sum(r.mos_n), sum(r.buy_n), sum(r.sell_n)
FROM rollup_hourly r
GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rollup_call_hourly
SELECT date_trunc('hour', k.start, 'UTC'), k.tenant, k.direction, k.country, k.trunk, count(*), sum(k.answered_call)
FROM metric_call_v k
GROUP BY 1, 2, 3, 4, 5;

-- readers see their own tenant's rows, as in rollup_hourly (0009)
SELECT cdrflow_tenant_rls();

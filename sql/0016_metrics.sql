-- 0016: one home for every metric (docs/metrics.md "## The metric dictionary").
--
-- Each metric is defined here once, in three layers that every consumer
-- (cdrflow-query stats, every report template, the rollups) reads:
--
--   1. what one row contributes: a column of rollup_leg_v (legs) or of
--      metric_call_v (calls), 0/1 for counts, seconds or micro-units for sums;
--   2. the sum of that column over the rows of a period (and key); the
--      rollup tables store exactly these sums;
--   3. a ratio of sums: metric_asr, metric_acd, metric_answer_rate, exact
--      numeric (full precision).  Display rounding is separate and named:
--      metric_pct, metric_money, metric_seconds (half away from zero).
--
-- The whole current body of every object this migration changes is stated
-- here (rollup_leg_v, rollup_after_batch, rollup_*_v).
--
-- It also stores the last per-leg facts SQL still derived (trunk, country):
-- see "leg facts" below.

-- ------------------------------------------------------------ ratios

-- ASR (answer-seizure ratio): answered attempts / attempts; NULL when there
-- is no attempt.
CREATE FUNCTION metric_asr(answered_attempts numeric, attempts numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT answered_attempts / nullif(attempts, 0)
$$;

-- ACD (average call duration, s): billed seconds of the answered attempts /
-- answered attempts; NULL when nothing was answered.
CREATE FUNCTION metric_acd(attempt_billsec numeric, answered_attempts numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT attempt_billsec / nullif(answered_attempts, 0)
$$;

-- Answer rate (of calls): answered calls / calls; NULL when there is no call.
CREATE FUNCTION metric_answer_rate(answered_calls numeric, calls numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT answered_calls / nullif(calls, 0)
$$;

-- ------------------------------------------------------------ display

-- A ratio as percent with one decimal (half away from zero, numeric round).
CREATE FUNCTION metric_pct(ratio numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT round(100 * ratio, 1)
$$;

-- Micro-units of currency as currency with two decimals (cents, half away
-- from zero): what every tool shows; the warehouse keeps micro-units.
CREATE FUNCTION metric_money(micro numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT round(micro / 1000000.0, 2)
$$;

-- Seconds with one decimal (half away from zero).
CREATE FUNCTION metric_seconds(s numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT round(s, 1)
$$;

-- ------------------------------------------------------------ leg facts

-- A leg's trunk and destination country are derived once, by
-- cdrflow-etl (etl/legclass.c), and stored; SQL only reads them.
--
--   cdr.trunk        the endpoint of the leg's first non-Local side, the far
--                    side (dstchannel) first, the calling side first for
--                    inbound legs; '' when both are Local or empty
--   cdr.dst_country  ISO code of the longest prefix of cdr.dst_e164 (the
--                    normalised number, so a nationally dialled number has
--                    its country too) in rollup_country_code, the one
--                    country table (the ETL reads it at start); NULL: none
--   call.trunk, call.dst_country  those of the call's earliest leg (by
--                    sequence) that has one
--
-- Rows loaded before this migration get the same values here, once
-- (cdrflow_trunk is 0011's SQL of the same rule), and the rollups are
-- rebuilt from the legs so that they and the legs agree.

ALTER TABLE cdr ADD COLUMN IF NOT EXISTS trunk text;
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS dst_country text;
ALTER TABLE call ADD COLUMN IF NOT EXISTS trunk text;
ALTER TABLE call ADD COLUMN IF NOT EXISTS dst_country text;

UPDATE cdr l SET trunk = cdrflow_trunk(l.channel, l.dstchannel, l.direction),
	dst_country = (SELECT c.iso FROM rollup_country_code c
		       WHERE l.dst_e164 LIKE '+%' AND c.prefix = ANY (ARRAY(SELECT left(substr(l.dst_e164, 2), n)
									    FROM generate_series(1, 7) n))
		       ORDER BY length(c.prefix) DESC LIMIT 1)
WHERE l.trunk IS NULL;

UPDATE call k SET trunk = s.trunk, dst_country = s.dst_country
FROM (SELECT l.call_id, l.node,
	     coalesce((array_agg(l.trunk ORDER BY l.sequence) FILTER (WHERE l.trunk <> ''))[1], '') AS trunk,
	     (array_agg(l.dst_country ORDER BY l.sequence) FILTER (WHERE l.dst_country IS NOT NULL))[1] AS dst_country
      FROM cdr l WHERE l.call_id IS NOT NULL GROUP BY l.call_id, l.node) s
WHERE k.call_id = s.call_id AND k.node = s.node AND k.trunk IS NULL;

-- ------------------------------------------------------------ rows

-- Every leg that belongs to a call, with its keys (the stored facts) and
-- what it contributes to each leg metric.  The first 16 columns keep 0009's
-- names and types; the contributions follow.
CREATE OR REPLACE VIEW rollup_leg_v WITH (security_invoker = true) AS
SELECT l.node, l.call_id, l.uniqueid, l.calldate,
       date_trunc('hour', l.calldate, 'UTC') AS hour,
       coalesce(l.tenant, '') AS tenant,
       d.direction,
       l.disposition,
       coalesce(l.dst_country, '') AS country,
       coalesce(l.trunk, '') AS trunk,
       a.is_call,
       l.billsec, l.duration, l.sell_cost, l.buy_cost,
       coalesce(l.worst_mos, k.worst_mos)::numeric AS mos,
       -- legs: 1 per leg; answered_legs: disposition ANSWERED
       (l.disposition = 'ANSWERED')::int AS answered_leg,
       -- attempts: dial legs (cdrflow_is_dial_leg); answered attempts
       a.is_call::int AS attempt,
       (a.is_call AND l.disposition = 'ANSWERED')::int AS answered_attempt,
       -- attempt_billsec: billsec of an answered attempt (ACD numerator)
       CASE WHEN a.is_call AND l.disposition = 'ANSWERED' THEN l.billsec ELSE 0 END AS attempt_billsec,
       -- rated_legs: a buy or a sell cost is known
       (l.sell_cost IS NOT NULL OR l.buy_cost IS NOT NULL)::int AS rated
FROM cdr l
JOIN call k ON k.call_id = l.call_id AND k.node = l.node
CROSS JOIN LATERAL (SELECT cdrflow_rollup_direction(l.direction, k.direction) AS direction) d
CROSS JOIN LATERAL (SELECT cdrflow_is_dial_leg(l.dstchannel, l.lastapp) AS is_call) a;

-- Every call (conversation), with its keys and what it contributes to each
-- call metric.  A call counts in the period of its start.
CREATE VIEW metric_call_v WITH (security_invoker = true) AS
SELECT k.node, k.call_id, k.start,
       coalesce(k.tenant, '') AS tenant,
       k.direction,
       (k.outcome = 'answered')::int AS answered_call,
       coalesce(k.trunk, '') AS trunk,
       coalesce(k.dst_country, '') AS country
FROM call k;

-- ------------------------------------------------------------ rollups

-- The analytics step: add this batch's calls' legs to both rollups, as the
-- sums of rollup_leg_v's contributions.
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
		       count(v.mos) FILTER (WHERE v.is_call) AS mos_n
		FROM call_batch b
		JOIN rollup_leg_v v ON v.call_id = b.call_id AND v.node = b.node
		GROUP BY 1, 2, 3, 4, 5, 6
	), h AS (
		INSERT INTO rollup_hourly AS r SELECT * FROM d
		ON CONFLICT (hour, tenant, direction, disposition, country, trunk) DO UPDATE SET
			legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
			calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
			billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
			sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
			rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum,
			mos_n = r.mos_n + excluded.mos_n
	)
	INSERT INTO rollup_daily AS r
	SELECT date_trunc('day', d.hour, 'UTC'), d.tenant, d.direction, d.disposition, d.country, d.trunk,
	       sum(d.legs), sum(d.leg_billsec), sum(d.calls), sum(d.answered), sum(d.billsec), sum(d.duration),
	       sum(d.sell_cost), sum(d.buy_cost), sum(d.rated), sum(d.mos_sum), sum(d.mos_n)
	FROM d GROUP BY 1, 2, 3, 4, 5, 6
	ON CONFLICT (day, tenant, direction, disposition, country, trunk) DO UPDATE SET
		legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
		calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
		billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
		sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
		rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum, mos_n = r.mos_n + excluded.mos_n;
END $$;

-- The rollup columns keep their 0009 names; in dictionary terms:
-- calls = attempts, answered = answered attempts, billsec = attempt_billsec,
-- leg_billsec = billed time (every leg), rated = rated legs.  The ratios
-- are the dictionary's (exact numeric, as before).
CREATE OR REPLACE VIEW rollup_hourly_v WITH (security_invoker = true) AS
SELECT r.*,
       metric_asr(r.answered, r.calls) AS asr,
       metric_acd(r.billsec, r.answered) AS acd,
       r.mos_sum / nullif(r.mos_n, 0) AS avg_mos
FROM rollup_hourly r;

CREATE OR REPLACE VIEW rollup_daily_v WITH (security_invoker = true) AS
SELECT r.*,
       metric_asr(r.answered, r.calls) AS asr,
       metric_acd(r.billsec, r.answered) AS acd,
       r.mos_sum / nullif(r.mos_n, 0) AS avg_mos
FROM rollup_daily r;

CREATE OR REPLACE VIEW rollup_monthly_v WITH (security_invoker = true) AS
SELECT m.*,
       metric_asr(m.answered, m.calls) AS asr,
       metric_acd(m.billsec, m.answered) AS acd,
       m.mos_sum / nullif(m.mos_n, 0) AS avg_mos
FROM (SELECT date_trunc('month', day, 'UTC') AS month, tenant, direction, disposition, country, trunk,
	     sum(legs) AS legs, sum(leg_billsec) AS leg_billsec, sum(calls) AS calls, sum(answered) AS answered,
	     sum(billsec) AS billsec, sum(duration) AS duration, sum(sell_cost) AS sell_cost,
	     sum(buy_cost) AS buy_cost, sum(rated) AS rated, sum(mos_sum) AS mos_sum, sum(mos_n) AS mos_n
      FROM rollup_daily GROUP BY 1, 2, 3, 4, 5, 6) m;

-- the rollups again, from every call's legs (rollup_after_batch over all calls)
TRUNCATE rollup_hourly, rollup_daily;
DROP TABLE IF EXISTS pg_temp.call_batch;
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
INSERT INTO call_batch SELECT * FROM call;
SELECT rollup_after_batch('migration 0016', 0, 0);
DROP TABLE call_batch;

-- readers: grant the new view (and re-grant the replaced ones)
SELECT cdrflow_tenant_rls();

-- 0051: the operator's margin from rollups (issue 15).  operator-margin
-- summed every leg of the month in each of its four sections, the per
-- carrier one joining cdr to rollup_leg_v leg by leg: 98 s at 10 M legs a
-- month.
--
--   * rollup_leg_v gains the leg's carrier ('' when none), at the end.
--   * rollup_margin_hourly / rollup_margin_daily: rollup_leg_v's rated
--     legs, their billed time and buy and sell costs per UTC hour / day x
--     tenant x destination country x carrier (every leg of a call, rated
--     or not, so "no rated leg" and "no leg" stay apart), kept by their
--     step from the batch's calls like rollup_hourly.
--   * rollup_margin_period(from, to, tenant): those sums over a period,
--     split as cdrflow_period_split says (days, hours, legs), the one
--     source of operator-margin's sections when the schema has it.

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
       (l.sell_cost IS NOT NULL OR l.buy_cost IS NOT NULL)::int AS rated,
       -- the carrier the leg went out through, '' when none (0051)
       coalesce(l.carrier, '') AS carrier
FROM cdr l
JOIN call k ON k.call_id = l.call_id AND k.node = l.node
CROSS JOIN LATERAL (SELECT cdrflow_rollup_direction(l.direction, k.direction) AS direction) d
CROSS JOIN LATERAL (SELECT cdrflow_is_dial_leg(l.dstchannel, l.lastapp) AS is_call) a;

CREATE TABLE rollup_margin_hourly (
	hour          timestamptz NOT NULL, -- UTC hour of the legs' calldate
	tenant        text NOT NULL,        -- rollup_leg_v.tenant ('' none)
	country       text NOT NULL,        -- rollup_leg_v.country ('' none)
	carrier       text NOT NULL,        -- rollup_leg_v.carrier ('' none)
	legs          bigint NOT NULL,      -- every leg
	rated         bigint NOT NULL,      -- sum of rated (a buy or a sell cost)
	rated_billsec bigint NOT NULL,      -- billsec of the rated legs
	buy_cost      numeric NOT NULL,     -- sum of buy_cost, 0 when none
	sell_cost     numeric NOT NULL,     -- sum of sell_cost, 0 when none
	buy_n         bigint NOT NULL,      -- legs with a buy_cost
	sell_n        bigint NOT NULL,      -- legs with a sell_cost
	PRIMARY KEY (hour, tenant, country, carrier)
);
CREATE INDEX rollup_margin_hourly_tenant_idx ON rollup_margin_hourly (tenant, hour);
CREATE TABLE rollup_margin_daily (LIKE rollup_margin_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_margin_daily RENAME COLUMN hour TO day;
ALTER TABLE rollup_margin_daily ADD PRIMARY KEY (day, tenant, country, carrier);
CREATE INDEX rollup_margin_daily_tenant_idx ON rollup_margin_daily (tenant, day);
COMMENT ON TABLE rollup_margin_hourly IS 'rollup_leg_v''s rated legs and costs per UTC hour x tenant x country x carrier';
COMMENT ON TABLE rollup_margin_daily IS 'rollup_margin_hourly summed per UTC day';

-- The analytics step: this batch's calls' legs into both margin rollups.
CREATE FUNCTION rollup_margin_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
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
		-- the legs of the batch's call_ids found by index first (OFFSET 0: planned on their own, not probed row by row; see 0046)
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

INSERT INTO analytics_step (fn, ord) VALUES ('rollup_margin_after_batch', 915);

-- The margin sums of [p_from, p_to) (every tenant when p_tenant is NULL):
-- the rollups' whole days and hours, the legs of rollup_leg_v for the rest.
CREATE FUNCTION rollup_margin_period(p_from timestamptz, p_to timestamptz, p_tenant text)
RETURNS TABLE (tenant text, country text, carrier text, legs bigint, rated bigint, rated_billsec bigint,
	       buy_cost numeric, sell_cost numeric, buy_n bigint, sell_n bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	s record;
BEGIN
	s := cdrflow_period_split(p_from, p_to);
	RETURN QUERY
	SELECT x.tenant, x.country, x.carrier, sum(x.legs)::bigint, sum(x.rated)::bigint, sum(x.rated_billsec)::bigint,
	       sum(x.buy_cost), sum(x.sell_cost), sum(x.buy_n)::bigint, sum(x.sell_n)::bigint
	FROM (SELECT r.tenant, r.country, r.carrier, r.legs, r.rated, r.rated_billsec, r.buy_cost, r.sell_cost, r.buy_n,
		     r.sell_n
	      FROM rollup_margin_daily r
	      WHERE r.day >= s.d0 AND r.day < s.d1 AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      UNION ALL
	      SELECT r.tenant, r.country, r.carrier, r.legs, r.rated, r.rated_billsec, r.buy_cost, r.sell_cost, r.buy_n,
		     r.sell_n
	      FROM rollup_margin_hourly r
	      WHERE ((r.hour >= s.h0 AND r.hour < s.d0) OR (r.hour >= s.d1 AND r.hour < s.h1))
		AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      UNION ALL
	      SELECT v.tenant, v.country, v.carrier, 1, v.rated, CASE WHEN v.rated = 1 THEN v.billsec ELSE 0 END,
		     coalesce(v.buy_cost, 0), coalesce(v.sell_cost, 0), (v.buy_cost IS NOT NULL)::int,
		     (v.sell_cost IS NOT NULL)::int
	      FROM rollup_leg_v v
	      WHERE ((v.calldate >= p_from AND v.calldate < s.h0) OR (v.calldate >= s.h1 AND v.calldate < p_to))
		AND (p_tenant IS NULL OR v.tenant = p_tenant)) x
	GROUP BY 1, 2, 3;
END $$;

-- built from every call's legs (read from the view, not a temp call_batch,
-- so that this also runs on a distributed schema)
INSERT INTO rollup_margin_hourly
SELECT v.hour, v.tenant, v.country, v.carrier, count(*), sum(v.rated),
       coalesce(sum(v.billsec) FILTER (WHERE v.rated = 1), 0), coalesce(sum(v.buy_cost), 0),
       coalesce(sum(v.sell_cost), 0), count(v.buy_cost), count(v.sell_cost)
FROM rollup_leg_v v
GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_margin_daily
SELECT date_trunc('day', r.hour, 'UTC'), r.tenant, r.country, r.carrier, sum(r.legs), sum(r.rated),
       sum(r.rated_billsec), sum(r.buy_cost), sum(r.sell_cost), sum(r.buy_n), sum(r.sell_n)
FROM rollup_margin_hourly r
GROUP BY 1, 2, 3, 4;

-- readers see their own tenant's rows, as in rollup_hourly (0009); the
-- view is granted again
SELECT cdrflow_tenant_rls();

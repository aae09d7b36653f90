-- 0073: a cut hour of the month statement reads only its smaller part's
-- legs (issue 15: the month statement in a half-hour zone under a second).
--
-- rollup_statement_period (0055, 0059) reads every leg of an hour a local
-- midnight cuts (Asia/Kolkata: one a day, 31 a month, in each of the
-- statement's five sections), to give each part of the hour its day.  The
-- two parts add up to the hour the rollup holds, so the legs of the smaller
-- part are enough: that part from its legs, the other as the rollup's hour
-- less those legs, per country and node (the sums are integers and
-- numeric: exact).  Kolkata reads half an hour of legs instead of one,
-- Eucla (+08:45) and Nepal (+05:45) a quarter.  A (country, node) whose
-- other part has no charged leg gives no row, as the legs alone gave none.
-- An hour the local days do not cut at one instant into two parts (a zone
-- that moves its clock at midnight) is read from its legs, as before.  The
-- rest of 0059's body is unchanged.

CREATE OR REPLACE FUNCTION rollup_statement_period(p_from timestamptz, p_to timestamptz, p_tenant text)
RETURNS TABLE (day timestamptz, country text, source text, charged bigint, billsec bigint, sell_cost numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	h0 timestamptz;
	h1 timestamptz;
	cut timestamptz[];
	c timestamptz;
	m timestamptz;
	lo timestamptz;
	hi timestamptz;
BEGIN
	-- the whole UTC hours of the period: [h0, h1) (0047's split; none: p_to)
	SELECT s.h0, s.h1 INTO h0, h1 FROM cdrflow_period_split(p_from, p_to) s;
	-- the hours of [h0, h1) a local midnight cuts: their legs are read
	cut := cdrflow_period_cut(h0, h1, 'day');
	-- Each branch sums per UTC hour (the rollup) or lists the legs in a
	-- query planned apart (OFFSET 0), and the local day is taken from
	-- those rows: on Citus the apart query runs on the workers, whose time
	-- zone is not the session's; the day is computed on the coordinator.
	RETURN QUERY
	SELECT date_trunc('day', x.hour), x.country, x.source, sum(x.charged)::bigint, sum(x.billsec)::bigint,
	       sum(x.sell_cost)
	FROM (SELECT r.hour, r.country, s.type AS source, sum(r.charged) AS charged, sum(r.billsec) AS billsec,
		     sum(r.sell_cost) AS sell_cost
	      FROM rollup_statement_hourly r LEFT JOIN source_node s ON s.node = r.node
	      WHERE r.hour >= h0 AND r.hour < h1 AND r.hour <> ALL (cut) AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      GROUP BY 1, 2, 3 OFFSET 0) x
	GROUP BY 1, 2, 3;
	RETURN QUERY
	SELECT date_trunc('day', x.calldate), x.country, x.source, count(*), sum(x.billsec)::bigint, sum(x.sell_cost)
	FROM (SELECT v.calldate, v.country, s.type AS source, v.billsec, v.sell_cost
	      FROM rollup_leg_v v LEFT JOIN source_node s ON s.node = v.node
	      WHERE ((v.calldate >= p_from AND v.calldate < h0) OR (v.calldate >= h1 AND v.calldate < p_to))
		AND v.sell_cost IS NOT NULL AND (p_tenant IS NULL OR v.tenant = p_tenant) OFFSET 0) x
	GROUP BY 1, 2, 3;
	FOREACH c IN ARRAY cut LOOP
		-- the local midnight inside the hour: where its last microsecond's day starts
		m := date_trunc('day', c + interval '1 hour' - interval '1 microsecond');
		IF m > c AND m < c + interval '1 hour' AND date_trunc('day', c) = date_trunc('day', m - interval '1 microsecond')
		   AND date_trunc('day', m) = m THEN
			-- the smaller part from its legs, the other from the rollup's hour less them
			IF m - c <= interval '30 minutes' THEN
				lo := c;
				hi := m;
			ELSE
				lo := m;
				hi := c + interval '1 hour';
			END IF;
			RETURN QUERY
			WITH l AS MATERIALIZED (
				SELECT v.country, v.node, count(*) AS charged, sum(v.billsec) AS billsec,
				       sum(v.sell_cost) AS sell_cost
				FROM rollup_leg_v v
				WHERE v.calldate >= lo AND v.calldate < hi AND v.sell_cost IS NOT NULL
				  AND (p_tenant IS NULL OR v.tenant = p_tenant)
				GROUP BY 1, 2 OFFSET 0
			), r AS MATERIALIZED (
				SELECT r.country, r.node, sum(r.charged) AS charged, sum(r.billsec) AS billsec,
				       sum(r.sell_cost) AS sell_cost
				FROM rollup_statement_hourly r
				WHERE r.hour = c AND (p_tenant IS NULL OR r.tenant = p_tenant)
				GROUP BY 1, 2 OFFSET 0
			), parts AS (
				SELECT date_trunc('day', lo) AS day, l.country, l.node, l.charged, l.billsec, l.sell_cost
				FROM l
				UNION ALL
				SELECT date_trunc('day', CASE WHEN lo = c THEN m ELSE c END), r.country, r.node,
				       r.charged - coalesce(l.charged, 0), r.billsec - coalesce(l.billsec, 0),
				       r.sell_cost - coalesce(l.sell_cost, 0)
				FROM r LEFT JOIN l ON l.country = r.country AND l.node = r.node
			)
			SELECT p.day, p.country, s.type, sum(p.charged)::bigint, sum(p.billsec)::bigint, sum(p.sell_cost)
			FROM parts p LEFT JOIN source_node s ON s.node = p.node
			WHERE p.charged > 0
			GROUP BY 1, 2, 3;
		ELSE
			-- one statement per such hour: an index range of the legs
			RETURN QUERY
			SELECT date_trunc('day', x.calldate), x.country, x.source, count(*), sum(x.billsec)::bigint,
			       sum(x.sell_cost)
			FROM (SELECT v.calldate, v.country, s.type AS source, v.billsec, v.sell_cost
			      FROM rollup_leg_v v LEFT JOIN source_node s ON s.node = v.node
			      WHERE v.calldate >= c AND v.calldate < c + interval '1 hour'
				AND v.sell_cost IS NOT NULL AND (p_tenant IS NULL OR v.tenant = p_tenant) OFFSET 0) x
			GROUP BY 1, 2, 3;
		END IF;
	END LOOP;
END $$;

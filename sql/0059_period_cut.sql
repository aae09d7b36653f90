-- 0059: the hours a local day or hour cuts, in one function (issue 15).
-- rollup_statement_period (0055) computed inline which UTC hours of a
-- period a local midnight cuts (their legs are read, the rollup's other
-- hours are whole); cdrflow-query stats now reads its hourly rollups the
-- same way for --by hour and --by day in any zone, so the rule gets one
-- home here and 0055's function calls it (its body is otherwise 0055's).
--
--   * cdrflow_period_cut(h0, h1, unit): the UTC hours of [h0, h1) (whole
--     hours, as cdrflow_period_split (0047) gives them) that a boundary of
--     a local unit ('day' or 'hour', in the session's TimeZone) falls
--     inside: an hour whose first and last microsecond are in two local
--     days (hours).  Empty when unit is NULL (a key that is not a time).
--     A whole-hour zone has none for 'hour' and none for 'day'; Asia/Kolkata
--     (+05:30) one a day for 'day' and every hour for 'hour'.
--   * cdrflow_period_parts(from, to, unit): the ranges a reader takes from
--     the hourly rollups and those it takes from the legs, merged.

CREATE FUNCTION cdrflow_period_cut(p_h0 timestamptz, p_h1 timestamptz, p_unit text) RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
	SELECT coalesce(array_agg(g.h ORDER BY g.h), '{}')
	FROM generate_series(p_h0, p_h1 - interval '1 hour', interval '1 hour') g(h)
	WHERE p_unit IS NOT NULL
	  AND date_trunc(p_unit, g.h) <> date_trunc(p_unit, g.h + interval '1 hour' - interval '1 microsecond')
$$;

-- The parts of [p_from, p_to) for a reader keyed by local p_unit ('hour',
-- 'day', or NULL for a key that is not a time): part 'r', the ranges of
-- whole UTC hours an hourly rollup answers (the split's [h0, h1) less the
-- cut hours); part 'l', the ranges the legs answer (the minutes at either
-- end and the cut hours).  Adjacent pieces are merged, so a zone whose
-- every hour is cut (--by hour in Asia/Kolkata) has one legs range, not
-- one a hour.  Together the ranges cover the period once.
CREATE FUNCTION cdrflow_period_parts(p_from timestamptz, p_to timestamptz, p_unit text)
RETURNS TABLE (part text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE AS $$
	WITH s AS (SELECT * FROM cdrflow_period_split(p_from, p_to)),
	c AS (SELECT cdrflow_period_cut(s.h0, s.h1, p_unit) AS cut FROM s),
	z AS (
		SELECT 'l' AS part, p_from AS lo, s.h0 AS hi FROM s
		UNION ALL SELECT 'l', s.h1, p_to FROM s
		UNION ALL SELECT 'l', u, u + interval '1 hour' FROM c, unnest(c.cut) u
		UNION ALL SELECT 'r', g, g + interval '1 hour'
		FROM s, c, generate_series(s.h0, s.h1 - interval '1 hour', interval '1 hour') g
		WHERE g <> ALL (c.cut)
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

-- 0055's, with its cut hours from cdrflow_period_cut
CREATE OR REPLACE FUNCTION rollup_statement_period(p_from timestamptz, p_to timestamptz, p_tenant text)
RETURNS TABLE (day timestamptz, country text, source text, charged bigint, billsec bigint, sell_cost numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	h0 timestamptz;
	h1 timestamptz;
	cut timestamptz[];
	c timestamptz;
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
	-- one statement per cut hour: each an index range of the legs
	FOREACH c IN ARRAY cut LOOP
		RETURN QUERY
		SELECT date_trunc('day', x.calldate), x.country, x.source, count(*), sum(x.billsec)::bigint,
		       sum(x.sell_cost)
		FROM (SELECT v.calldate, v.country, s.type AS source, v.billsec, v.sell_cost
		      FROM rollup_leg_v v LEFT JOIN source_node s ON s.node = v.node
		      WHERE v.calldate >= c AND v.calldate < c + interval '1 hour'
			AND v.sell_cost IS NOT NULL AND (p_tenant IS NULL OR v.tenant = p_tenant) OFFSET 0) x
		GROUP BY 1, 2, 3;
	END LOOP;
END $$;

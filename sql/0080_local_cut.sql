-- 0080: "a local boundary cuts this range" in one function (issue 15, one
-- home per fact).  Whether a boundary of a local day or hour (the session's
-- TimeZone) falls inside a range of the rollups' grid decides if a rollup
-- row can answer for that range or its legs must be read.  The rule was
-- written out in cdrflow_period_cut (0059, UTC hours), cdrflow_period_parts
-- (0074, hours and quarter hours) and cdrflow_quarters_uncut (0077,
-- quarter hours); each now calls cdrflow_local_cut, their bodies otherwise
-- unchanged.
--
--   * cdrflow_local_cut(unit, lo, hi): true when [lo, hi) starts and ends
--     in two local units ('day', 'hour', ...): its first and last
--     microsecond have a different date_trunc(unit).  False for a NULL
--     unit (a key that is not a time).  A plain SQL expression, so that the
--     planner inlines it into its callers.

CREATE FUNCTION cdrflow_local_cut(p_unit text, p_lo timestamptz, p_hi timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT p_unit IS NOT NULL AND date_trunc(p_unit, p_lo) <> date_trunc(p_unit, p_hi - interval '1 microsecond')
$$;

CREATE OR REPLACE FUNCTION cdrflow_period_cut(p_h0 timestamptz, p_h1 timestamptz, p_unit text) RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
	SELECT coalesce(array_agg(g.h ORDER BY g.h), '{}')
	FROM generate_series(p_h0, p_h1 - interval '1 hour', interval '1 hour') g(h)
	WHERE cdrflow_local_cut(p_unit, g.h, g.h + interval '1 hour')
$$;

CREATE OR REPLACE FUNCTION cdrflow_quarters_uncut(p_lo timestamptz, p_hi timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT NOT EXISTS (
		SELECT 1 FROM generate_series(p_lo, p_hi - interval '15 minutes', interval '15 minutes') u
		WHERE cdrflow_local_cut('day', u, u + interval '15 minutes'))
$$;

-- 0074's parts, the cut told by cdrflow_local_cut.
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
		HAVING count(*) = 4 AND NOT cdrflow_local_cut(p_unit, qs.hour, qs.hour + interval '1 hour')
	), z AS (
		SELECT 'l' AS part, p_from AS lo, least(g.q0, p_to) AS hi FROM g
		UNION ALL SELECT 'l', greatest(g.q1, g.q0, p_from), p_to FROM g
		UNION ALL SELECT 'r', hs.hour, hs.hour + interval '1 hour' FROM hs
		UNION ALL
		SELECT CASE WHEN cdrflow_local_cut(p_unit, qs.lo, qs.hi) THEN 'l' ELSE 'q' END, qs.lo, qs.hi
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

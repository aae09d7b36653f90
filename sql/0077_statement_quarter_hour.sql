-- 0077: the month statement's cut hours from a quarter-hour rollup
-- (issue 15: the month statement under a second at 10 M legs a month, in
-- a half-hour zone too).
--
-- rollup_statement_period (0055, 0059, 0073) read from the legs every hour
-- a local midnight cuts (Asia/Kolkata, +05:30: one a day, 31 a month; since
-- 0073 its smaller half) and the minutes at either end of the period,
-- each leg through rollup_leg_v (joined to its call): 0.8-1.4 s for one
-- tenant's month in Kolkata at 10 M legs, against 0.16-0.18 s in UTC.
-- Every offset in use today is a multiple of 15 minutes (0074), so those
-- hours are whole UTC quarter hours on either side of the midnight.
--
--   * rollup_statement_quarter_hour: rollup_statement_hourly's sums per UTC
--     quarter hour (cdrflow_quarter_hour, 0074), same keys and columns.
--   * rollup_statement_after_batch computes a batch's sums per quarter hour
--     once, upserts them, and sums them per hour for rollup_statement_hourly
--     (integers and numeric: the same hourly rows).
--   * rollup_statement_period reads from the quarter-hour rollup a cut hour
--     none of whose quarter hours a local day cuts, and the whole quarter
--     hours of the period's ends (when none is cut); the legs only for the
--     minutes off the quarter-hour grid at either end, and for what a
--     midnight off that grid cuts (0073's halves, as before).

CREATE TABLE rollup_statement_quarter_hour (LIKE rollup_statement_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_statement_quarter_hour RENAME COLUMN hour TO quarter;
ALTER TABLE rollup_statement_quarter_hour ADD PRIMARY KEY (quarter, tenant, country, node);
CREATE INDEX rollup_statement_quarter_hour_tenant_idx ON rollup_statement_quarter_hour (tenant, quarter);
COMMENT ON TABLE rollup_statement_quarter_hour IS
	'rollup_statement_hourly''s sums per UTC quarter hour of the legs'' calldate';
COMMENT ON COLUMN rollup_statement_quarter_hour.quarter IS
	'first instant of the UTC quarter hour: cdrflow_quarter_hour(calldate)';

-- 0063's, with the batch's sums per quarter hour first: those upserted into
-- rollup_statement_quarter_hour and summed per hour into
-- rollup_statement_hourly, in one statement.
CREATE OR REPLACE FUNCTION rollup_statement_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	WITH d AS (
		SELECT cdrflow_quarter_hour(v.calldate) AS quarter, v.tenant, v.country, v.node, count(*) AS charged,
		       sum(v.billsec) AS billsec, sum(v.sell_cost) AS sell_cost
		FROM rollup_batch_legs() v -- the batch's legs, read once for every rollup step
		WHERE v.sell_cost IS NOT NULL
		GROUP BY 1, 2, 3, 4
	), q AS (
		INSERT INTO rollup_statement_quarter_hour AS r SELECT * FROM d
		ON CONFLICT (quarter, tenant, country, node) DO UPDATE SET
			charged = r.charged + excluded.charged, billsec = r.billsec + excluded.billsec,
			sell_cost = r.sell_cost + excluded.sell_cost
	)
	INSERT INTO rollup_statement_hourly AS r
	SELECT date_trunc('hour', d.quarter, 'UTC'), d.tenant, d.country, d.node, sum(d.charged), sum(d.billsec),
	       sum(d.sell_cost)
	FROM d
	GROUP BY 1, 2, 3, 4
	ON CONFLICT (hour, tenant, country, node) DO UPDATE SET
		charged = r.charged + excluded.charged, billsec = r.billsec + excluded.billsec,
		sell_cost = r.sell_cost + excluded.sell_cost;
END $$;

-- True when no local day (the session's TimeZone) cuts a quarter hour of
-- [p_lo, p_hi) (whole quarter hours): each lies inside one local day.
CREATE FUNCTION cdrflow_quarters_uncut(p_lo timestamptz, p_hi timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT NOT EXISTS (
		SELECT 1 FROM generate_series(p_lo, p_hi - interval '15 minutes', interval '15 minutes') u
		WHERE date_trunc('day', u) <> date_trunc('day', u + interval '15 minutes' - interval '1 microsecond'))
$$;

-- 0073's, with the quarter-hour rollup read where it gives each quarter
-- hour its local day: a cut hour whose quarter hours no midnight cuts, and
-- the whole quarter hours of the period's ends.  The legs are read for the
-- rest, and for a cut hour 0073's halves (a midnight off the quarter-hour
-- grid) as before.
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
	qlo timestamptz[] := '{}';  -- ranges of whole quarter hours read from the quarter-hour rollup
	qhi timestamptz[] := '{}';
	llo timestamptz[] := '{}';  -- ranges read from the legs
	lhi timestamptz[] := '{}';
	e record;
	i int;
BEGIN
	-- the whole UTC hours of the period: [h0, h1) (0047's split; none: p_to)
	SELECT s.h0, s.h1 INTO h0, h1 FROM cdrflow_period_split(p_from, p_to) s;
	-- the hours of [h0, h1) a local midnight cuts
	cut := cdrflow_period_cut(h0, h1, 'day');
	-- Each branch sums per UTC hour or quarter hour (the rollups) or lists
	-- the legs in a query planned apart (OFFSET 0), and the local day is
	-- taken from those rows: on Citus the apart query runs on the workers,
	-- whose time zone is not the session's; the day is computed on the
	-- coordinator.
	RETURN QUERY
	SELECT date_trunc('day', x.hour), x.country, x.source, sum(x.charged)::bigint, sum(x.billsec)::bigint,
	       sum(x.sell_cost)
	FROM (SELECT r.hour, r.country, s.type AS source, sum(r.charged) AS charged, sum(r.billsec) AS billsec,
		     sum(r.sell_cost) AS sell_cost
	      FROM rollup_statement_hourly r LEFT JOIN source_node s ON s.node = r.node
	      WHERE r.hour >= h0 AND r.hour < h1 AND r.hour <> ALL (cut) AND (p_tenant IS NULL OR r.tenant = p_tenant)
	      GROUP BY 1, 2, 3 OFFSET 0) x
	GROUP BY 1, 2, 3;
	-- the period's ends, [p_from, h0) and [h1, p_to): their whole quarter
	-- hours from the quarter-hour rollup when no local day cuts one, the
	-- minutes off the grid (or the whole end) from the legs
	FOR e IN SELECT * FROM (VALUES (p_from, h0), (h1, p_to)) v(a, b) WHERE v.a < v.b LOOP
		lo := cdrflow_quarter_hour(e.a);
		IF lo < e.a THEN
			lo := lo + interval '15 minutes';
		END IF;
		hi := cdrflow_quarter_hour(e.b);
		IF lo < hi AND cdrflow_quarters_uncut(lo, hi) THEN
			qlo := qlo || lo;
			qhi := qhi || hi;
			llo := llo || e.a || hi;
			lhi := lhi || lo || e.b;
		ELSE
			llo := llo || e.a;
			lhi := lhi || e.b;
		END IF;
	END LOOP;
	FOREACH c IN ARRAY cut LOOP
		IF cdrflow_quarters_uncut(c, c + interval '1 hour') THEN
			qlo := qlo || c;
			qhi := qhi || (c + interval '1 hour');
			CONTINUE;
		END IF;
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
			llo := llo || c;
			lhi := lhi || (c + interval '1 hour');
		END IF;
	END LOOP;
	-- one statement per range: each an index range of the rollup or the legs
	FOR i IN 1 .. coalesce(array_length(qlo, 1), 0) LOOP
		RETURN QUERY
		SELECT date_trunc('day', x.quarter), x.country, x.source, sum(x.charged)::bigint, sum(x.billsec)::bigint,
		       sum(x.sell_cost)
		FROM (SELECT r.quarter, r.country, s.type AS source, sum(r.charged) AS charged, sum(r.billsec) AS billsec,
			     sum(r.sell_cost) AS sell_cost
		      FROM rollup_statement_quarter_hour r LEFT JOIN source_node s ON s.node = r.node
		      WHERE r.quarter >= qlo[i] AND r.quarter < qhi[i] AND (p_tenant IS NULL OR r.tenant = p_tenant)
		      GROUP BY 1, 2, 3 OFFSET 0) x
		GROUP BY 1, 2, 3;
	END LOOP;
	FOR i IN 1 .. coalesce(array_length(llo, 1), 0) LOOP
		CONTINUE WHEN llo[i] >= lhi[i];
		RETURN QUERY
		SELECT date_trunc('day', x.calldate), x.country, x.source, count(*), sum(x.billsec)::bigint,
		       sum(x.sell_cost)
		FROM (SELECT v.calldate, v.country, s.type AS source, v.billsec, v.sell_cost
		      FROM rollup_leg_v v LEFT JOIN source_node s ON s.node = v.node
		      WHERE v.calldate >= llo[i] AND v.calldate < lhi[i]
			AND v.sell_cost IS NOT NULL AND (p_tenant IS NULL OR v.tenant = p_tenant) OFFSET 0) x
		GROUP BY 1, 2, 3;
	END LOOP;
END $$;

-- built from the warehouse (the view, not a temp call_batch, so that this
-- also runs on a distributed schema)
INSERT INTO rollup_statement_quarter_hour
SELECT cdrflow_quarter_hour(v.calldate), v.tenant, v.country, v.node, count(*), sum(v.billsec), sum(v.sell_cost)
FROM rollup_leg_v v
WHERE v.sell_cost IS NOT NULL
GROUP BY 1, 2, 3, 4;

-- readers see their own tenant's rows, as in rollup_hourly (0009)
SELECT cdrflow_tenant_rls();

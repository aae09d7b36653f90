-- 0055: the tenant statement from a rollup (issue 15).  tenant-statement
-- read rollup_leg_v's legs in each of its five sections, and the view
-- joins every leg to its call: one tenant's month at 10 M legs a month
-- hash-joined the tenant's 100 000 legs to all of call, 6 to 10 s.
--
--   * rollup_statement_hourly: the charged legs of rollup_leg_v (those with
--     a sell cost), their count, billed time and sell cost per UTC hour x
--     tenant x destination country x node, kept by its step from the
--     batch's calls like rollup_margin_hourly (0051, 0052).  The node, not
--     the kind of source: source_node is read when the statement is.
--   * rollup_statement_period(from, to, tenant): those sums per local day
--     (the session's TimeZone, the report's --tz), destination country and
--     kind of source over a period.  An hour of the rollup is read when it
--     lies inside the period and inside one local day; the legs are read
--     for the rest: the minutes at either end, and the hours a local
--     midnight cuts (a zone whose offset is not whole hours, such as
--     Asia/Kolkata, +05:30: one hour a day).  So the sums are the legs',
--     for any period and any --tz.

CREATE TABLE rollup_statement_hourly (
	hour      timestamptz NOT NULL, -- UTC hour of the legs' calldate
	tenant    text NOT NULL,        -- rollup_leg_v.tenant ('' none)
	country   text NOT NULL,        -- rollup_leg_v.country ('' none)
	node      text NOT NULL,        -- the legs' node (source_node says what kind of source it is)
	charged   bigint NOT NULL,      -- legs with a sell cost
	billsec   bigint NOT NULL,      -- their billsec
	sell_cost numeric NOT NULL,     -- their sell cost
	PRIMARY KEY (hour, tenant, country, node)
);
CREATE INDEX rollup_statement_hourly_tenant_idx ON rollup_statement_hourly (tenant, hour);
COMMENT ON TABLE rollup_statement_hourly IS 'rollup_leg_v''s legs with a sell cost per UTC hour x tenant x country x node';

-- The analytics step: this batch's calls' charged legs.
CREATE FUNCTION rollup_statement_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_statement_hourly AS r
	SELECT v.hour, v.tenant, v.country, v.node, count(*), sum(v.billsec), sum(v.sell_cost)
	FROM call_batch b
	-- the legs of the batch's call_ids found by index first (0052; OFFSET 0: planned on their own, not probed row by row)
	JOIN (SELECT * FROM rollup_leg_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) v
	ON v.call_id = b.call_id AND v.node = b.node
	WHERE v.sell_cost IS NOT NULL
	GROUP BY 1, 2, 3, 4
	ON CONFLICT (hour, tenant, country, node) DO UPDATE SET
		charged = r.charged + excluded.charged, billsec = r.billsec + excluded.billsec,
		sell_cost = r.sell_cost + excluded.sell_cost;
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('rollup_statement_after_batch', 920);

-- The charged legs of [p_from, p_to) (every tenant when p_tenant is NULL)
-- summed per local day (date_trunc('day', calldate) in the session's time
-- zone), destination country ('' none) and kind of source (source_node.type,
-- NULL for a node without a row): the rollup's hours that lie inside the
-- period and inside one local day, the legs of rollup_leg_v for the rest.
CREATE FUNCTION rollup_statement_period(p_from timestamptz, p_to timestamptz, p_tenant text)
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
	cut := ARRAY(SELECT g.h FROM generate_series(h0, h1 - interval '1 hour', interval '1 hour') g(h)
		     WHERE date_trunc('day', g.h) <> date_trunc('day', g.h + interval '1 hour' - interval '1 microsecond'));
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

-- built from every call's legs (read from the view, not a temp call_batch,
-- so that this also runs on a distributed schema)
INSERT INTO rollup_statement_hourly
SELECT v.hour, v.tenant, v.country, v.node, count(*), sum(v.billsec), sum(v.sell_cost)
FROM rollup_leg_v v
WHERE v.sell_cost IS NOT NULL
GROUP BY 1, 2, 3, 4;

-- readers see their own tenant's rows, as in rollup_hourly (0009); the
-- view is granted again
SELECT cdrflow_tenant_rls();

-- 0063: the rollup steps read the batch's legs once.
--
-- rollup_after_batch (0046), rollup_margin_after_batch (0051) and
-- rollup_statement_after_batch (0055) each joined the batch's calls with
-- rollup_leg_v, the one definition of a leg's rollup keys and figures,
-- for the same rows: the legs of call_batch's calls, each joined to its
-- call (a probe of call's call_id index per leg, in every partition, the
-- empty default one too).  On bench-etl's 5.1 M-event stream that was
-- 18,600 buffer reads and about 18 ms per batch of 2,600 legs, three times
-- over, and the probes deepen as the month fills.
--
-- rollup_batch_legs() returns those rows, read once per run of
-- cdrflow_after_batch: the first step that asks fills the session table
-- rollup_leg_batch with the very join the steps made (the same rows), and
-- the next steps of the same run read it back.  A run is named by the
-- transaction-local setting cdrflow.after_batch_run, which
-- cdrflow_after_batch now sets to a number that grows within its
-- transaction, and clears when its steps are done; a step called on its
-- own (no run named) always reads the legs afresh.  The steps' bodies are otherwise their migrations' own.

CREATE OR REPLACE FUNCTION cdrflow_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s record;
BEGIN
	-- a new run: what one step read for this batch, the next may reuse
	PERFORM set_config('cdrflow.after_batch_runs',
			   (coalesce(nullif(current_setting('cdrflow.after_batch_runs', true), ''), '0')::bigint + 1)::text,
			   true);
	PERFORM set_config('cdrflow.after_batch_run', current_setting('cdrflow.after_batch_runs'), true);
	FOR s IN SELECT fn FROM analytics_step ORDER BY ord, fn LOOP
		EXECUTE format('SELECT %I($1, $2, $3)', s.fn) USING p_node, p_seq_lo, p_seq_hi;
	END LOOP;
	PERFORM set_config('cdrflow.after_batch_run', '', true);
END $$;

-- The legs of call_batch's calls, as rollup_leg_v gives them.  Read once
-- per run of cdrflow_after_batch: the rollup steps (ord 900-920) are
-- adjacent and no step between them changes a leg or a call.
CREATE FUNCTION rollup_batch_legs() RETURNS SETOF rollup_leg_v
LANGUAGE plpgsql AS $$
DECLARE
	v_run text := nullif(current_setting('cdrflow.after_batch_run', true), '');
BEGIN
	IF to_regclass('pg_temp.rollup_leg_batch') IS NULL THEN
		CREATE TEMP TABLE rollup_leg_batch (LIKE rollup_leg_v) ON COMMIT DELETE ROWS;
	END IF;
	IF v_run IS NULL OR v_run IS DISTINCT FROM current_setting('cdrflow.rollup_leg_batch', true) THEN
		DELETE FROM pg_temp.rollup_leg_batch;
		-- the legs of the batch's call_ids found by index first (OFFSET 0:
		-- planned on their own, not probed row by row; see 0046)
		INSERT INTO pg_temp.rollup_leg_batch
		SELECT v.* FROM call_batch b
		JOIN (SELECT * FROM rollup_leg_v WHERE call_id = ANY (ARRAY(SELECT call_id FROM call_batch)) OFFSET 0) v
		ON v.call_id = b.call_id AND v.node = b.node;
		PERFORM set_config('cdrflow.rollup_leg_batch', coalesce(v_run, ''), true);
	END IF;
	RETURN QUERY SELECT * FROM pg_temp.rollup_leg_batch;
END $$;

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
		FROM rollup_batch_legs() v -- the batch's legs, read once for every rollup step
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
		FROM rollup_batch_legs() v -- the batch's legs, read once for every rollup step
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

CREATE OR REPLACE FUNCTION rollup_statement_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	INSERT INTO rollup_statement_hourly AS r
	SELECT v.hour, v.tenant, v.country, v.node, count(*), sum(v.billsec), sum(v.sell_cost)
	FROM rollup_batch_legs() v -- the batch's legs, read once for every rollup step
	WHERE v.sell_cost IS NOT NULL
	GROUP BY 1, 2, 3, 4
	ON CONFLICT (hour, tenant, country, node) DO UPDATE SET
		charged = r.charged + excluded.charged, billsec = r.billsec + excluded.billsec,
		sell_cost = r.sell_cost + excluded.sell_cost;
END $$;

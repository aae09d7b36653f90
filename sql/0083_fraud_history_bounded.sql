-- 0083: the fraud rules' history read per batch follows the batch and the
-- rules' windows, not the traffic of the last max_call_duration (issue 15:
-- analytics whose per-batch cost is bounded by the batch and the
-- configured windows).
--
-- fraud_build_attempts (0037) read, for every batch, each leg stored in the
-- max_call_duration (default 4 h) before the batch's first leg as soon as
-- one rule had a window or counted concurrent calls (the demo's
-- short_calls and tenant max_concurrent do), copied it into fraud_hist,
-- built every conversation into attempts and swept them.  The legs of four
-- hours of traffic, batch after batch: on the ETL benchmark's stream (4
-- calls/s, 100,000-event batches, the demo's rules) the step took 55 ms a
-- batch after 1 M events and 172 ms (mean) over 5 M, growing until the
-- history reaches four hours, and with the call rate (at 100 calls/s, 1.4 M
-- calls a batch).
--
-- What the rules can see (the 0008 functions fraud_window_hits,
-- fraud_concurrency_hits, fraud_eval_sequential, fraud_eval_wangiri): a
-- window (t - w, t] that holds an attempt of the batch, and the attempts
-- in progress at an instant an attempt of the batch covers.  So an
-- attempt starting at or before (the batch's earliest attempt - the
-- longest window), and over before that earliest attempt starts, is in
-- no such window and at no such instant: its conversation is not read.
-- The batch's earliest attempt starts at or after the earliest stored leg
-- of the batch's conversations (v_first).  Conversations are still read
-- whole from v_back before the batch, so each attempt has all its legs.
--
-- Concurrency rules: concurrent_intl, and tenant_concurrent when a tenant
-- has a max_concurrent (otherwise it never fires).  The legs in progress
-- are found by their end: index cdr_end_idx (below).
--
-- A window rule's longest window: its window_ms (the YAML configuration
-- always writes it, with the kind's default), or for a rule put in by SQL
-- without one the kind's default, an hour at most.
--
-- Choosing costs an index probe per conversation, reading a leg far less:
-- the conversations are chosen only when the history stored before the
-- window is over four times as long as the span from the window on (a
-- 5-minute window after the first hour or so); otherwise every leg of the
-- span is read in one pass, as before.  Measured on that stream over 5 M
-- events: 62 ms a batch (172 before) with the demo's rules; 55 ms (290)
-- with a 5-minute short_calls alone; 163 ms (178) with windows of an hour
-- and concurrency, where the whole span is read.  The session setting
-- cdrflow.fraud_history_choose = off reads the whole span whatever the
-- history: tests/t/t4310-fraud-history.sh compares the hits of both, batch
-- by batch.

CREATE OR REPLACE FUNCTION fraud_build_attempts() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_lo timestamptz;
	v_hi timestamptz;
	v_back interval;
	v_fwd interval;
	v_rules boolean;
	v_windows boolean;
	v_nodes text[];
	v_linkedids text[];
	v_conc boolean;
	v_win interval;         -- the longest window a rule of this batch counts over
	v_first timestamptz;    -- the earliest start of the batch's attempts (or before)
	v_from timestamptz;
	v_onodes text[];
	v_olinkedids text[];
	v_choose boolean := false; -- read the chosen conversations only
	v_oldest timestamptz;
	-- what fraud_hist keeps of a leg
	v_cols text := $c$l.node, l.linkedid, l.dst, l.direction, l.trunk, l.tenant, l.src, l.calldate,
	       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164, l.dst_country,
	       coalesce(l.dst_intl, l.dst_e164 IS NOT NULL) AS dst_intl,
	       coalesce(l.src_intl, l.src_e164 IS NOT NULL) AS src_intl,
	       l.uniqueid, l.sequence, l.channel, l.lastapp$c$;
BEGIN
	IF to_regclass('pg_temp.fraud_att') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_att;
	END IF;
	SELECT min(calldate), max("end") INTO v_lo, v_hi FROM cdr_batch;
	SELECT coalesce(max(w), '0')
	INTO v_fwd
	FROM (SELECT (params->>'window_ms')::bigint * interval '1 millisecond' AS w FROM fraud_rule
	      WHERE enabled AND params ? 'window_ms') r;
	v_back := greatest(v_fwd, coalesce((SELECT (value #>> '{}')::bigint FROM fraud_setting
					     WHERE name = 'max_call_duration_ms'), 14400000) * interval '1 millisecond');
	SELECT count(*) > 0, coalesce(bool_or(kind NOT IN ('hotlist', 'new_country', 'out_of_hours')), false),
	       -- (tenant_concurrent counts only for the tenants of a max_concurrent)
	       coalesce(bool_or(kind = 'concurrent_intl' OR (kind = 'tenant_concurrent' AND EXISTS (
			SELECT 1 FROM fraud_tenant_limit t WHERE t.max_concurrent IS NOT NULL))), false),
	       -- a window rule without window_ms (put in by SQL: the YAML
	       -- configuration always writes it) counts over its kind's default
	       -- window, an hour at most (fraud_eval_cost_velocity)
	       greatest(v_fwd, CASE WHEN bool_or(kind NOT IN ('hotlist', 'new_country', 'out_of_hours', 'concurrent_intl',
							      'tenant_concurrent') AND NOT params ? 'window_ms')
				     THEN interval '1 hour' ELSE interval '0' END)
	INTO v_rules, v_windows, v_conc, v_win
	FROM fraud_rule
	WHERE enabled AND kind NOT IN ('allowance', 'endpoint_unreachable', 'endpoint_recovered');
	-- The stored legs the rules may look at, read first on their own (on
	-- Citus a distributed table is not joined with the session's
	-- cdr_batch), whole conversations from v_back before the batch on (a
	-- rule counts attempts, which start at their conversation's first leg).
	-- Which conversations: the batch's own; with a sliding window, those
	-- with a leg starting within v_win before the batch's earliest attempt
	-- or later (no window holding an attempt of the batch reaches an
	-- attempt that starts before); with a concurrency rule, also those with
	-- a leg still in progress when that attempt starts.  Before 0083 every
	-- conversation of the last max_call_duration was read, built into
	-- attempts and swept, batch after batch: a cost that followed the
	-- traffic of the last four hours, not the batch and its windows.  The
	-- conversations left out change no rule's result.
	IF to_regclass('pg_temp.fraud_hist') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_hist;
	END IF;
	SELECT array_agg(DISTINCT node), array_agg(DISTINCT linkedid) INTO v_nodes, v_linkedids FROM cdr_batch;
	-- Choosing the conversations costs an index probe for each, reading a
	-- leg far less: with a window rule, unless the history before the
	-- window is much longer (four times) than the span from it on, every
	-- leg from v_back before the batch is read, as before 0083, in one pass
	IF v_windows AND v_lo IS NOT NULL THEN
		EXECUTE 'SELECT min(l.calldate) FROM cdr l WHERE l.calldate >= $1 - $2' INTO v_oldest USING v_lo, v_back;
		v_choose := (v_lo - v_win) - greatest(v_lo - v_back, v_oldest) > 4 * ((v_hi + v_fwd) - (v_lo - v_win))
			    -- off: every leg of v_back, whatever the history (tests)
			    AND coalesce(current_setting('cdrflow.fraud_history_choose', true), '') <> 'off';
	END IF;
	EXECUTE format($q$
	CREATE TEMP TABLE fraud_hist ON COMMIT DROP AS
	SELECT %s
	FROM cdr l
	WHERE $1::timestamptz IS NOT NULL AND l.calldate >= $1 - $3 AND l.calldate <= $2 + $4 %s
	$q$, v_cols,
	     CASE WHEN v_windows AND NOT v_choose THEN ''
		  -- the batch's conversations (and any other of the batch's
		  -- nodes with one of its linkedids)
		  ELSE 'AND l.node = ANY ($5) AND l.linkedid = ANY ($6)' END)
	USING v_lo, v_hi, v_back, v_fwd, v_nodes, v_linkedids;
	IF NOT v_windows THEN
		DELETE FROM fraud_hist h WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = h.node
							   AND b.linkedid = h.linkedid);
	ELSIF v_choose THEN
		SELECT least(v_lo, min(calldate)) INTO v_first FROM fraud_hist;
		v_from := greatest(v_lo - v_back, v_first - v_win);
		-- the other conversations a window or an instant of the batch
		-- reaches (cdr_end_idx finds the legs still in progress)
		EXECUTE format($q$
			SELECT array_agg(DISTINCT l.node), array_agg(DISTINCT l.linkedid) FROM cdr l
			WHERE (l.calldate > $7 %s) AND l.calldate >= $1 - $3 AND l.calldate <= $2 + $4
			  AND NOT (l.node = ANY ($5) AND l.linkedid = ANY ($6))
		$q$, CASE WHEN v_conc THEN 'OR l."end" > $8' ELSE '' END)
		INTO v_onodes, v_olinkedids
		USING v_lo, v_hi, v_back, v_fwd, v_nodes, v_linkedids, v_from, v_first;
		IF v_olinkedids IS NOT NULL THEN
			EXECUTE format($q$
			INSERT INTO fraud_hist
			SELECT %s
			FROM cdr l
			WHERE l.calldate >= $1 - $3 AND l.calldate <= $2 + $4
			  AND l.node = ANY ($7) AND l.linkedid = ANY ($8)
			  AND NOT (l.node = ANY ($5) AND l.linkedid = ANY ($6))
			$q$, v_cols)
			USING v_lo, v_hi, v_back, v_fwd, v_nodes, v_linkedids, v_onodes, v_olinkedids;
		END IF;
		RAISE DEBUG 'fraud_build_attempts: % conversations besides the batch''s, from %',
			coalesce(cardinality(v_olinkedids), 0), v_from;
	END IF;
	CREATE TEMP TABLE fraud_att ON COMMIT DROP AS
	WITH legs AS (
		SELECT b.node, b.linkedid, b.dst, b.direction, b.trunk, b.tenant, b.src, b.calldate,
		       b."end", b.billsec, b.duration, b.disposition, b.sell_cost, b.dst_e164, b.src_e164,
		       b.dst_country, coalesce(b.dst_intl, b.dst_e164 IS NOT NULL) AS dst_intl,
		       coalesce(b.src_intl, b.src_e164 IS NOT NULL) AS src_intl, true AS in_batch
		FROM cdr_batch b
		UNION ALL
		SELECT l.node, l.linkedid, l.dst, l.direction, l.trunk, l.tenant, l.src, l.calldate,
		       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164,
		       l.dst_country, l.dst_intl, l.src_intl, false
		FROM fraud_hist l
		WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = l.node AND b.uniqueid = l.uniqueid
				  AND b.calldate = l.calldate AND b.sequence IS NOT DISTINCT FROM l.sequence
				  AND b.channel = l.channel AND b.lastapp = l.lastapp)
	), d AS (
		SELECT x.*, fraud_leg_dir(x.direction) AS dir FROM legs x
	), g AS (
		SELECT d.node, d.linkedid, d.dst, d.dir,
		       max(coalesce(d.tenant, '')) AS tenant,
		       min(d.src) AS src,
		       max(nullif(d.trunk, '')) AS trunk,
		       min(d.calldate) AS start, max(d."end") AS "end",
		       max(d.billsec) AS billsec, max(d.duration) AS duration,
		       bool_or(d.disposition = 'ANSWERED') AS answered,
		       round(sum(d.sell_cost::numeric) / 1000000, 6) AS cost,
		       bool_or(d.in_batch) AS in_batch,
		       max(d.dst_e164) AS dst_e164, max(d.src_e164) AS src_e164,
		       max(d.dst_country) AS dst_country,
		       bool_or(d.dst_intl) AS dst_intl, bool_or(d.src_intl) AS src_intl
		FROM d WHERE d.dir IS NOT NULL
		GROUP BY d.node, d.linkedid, d.dst, d.dir
	)
	SELECT g.*, coalesce(g.dst_country, CASE WHEN g.dst_e164 IS NOT NULL THEN 'unknown' END) AS country,
	       CASE WHEN coalesce(g.dst_e164, g.dst) ~ '^\+?[0-9]{1,30}$'
		    THEN ltrim(coalesce(g.dst_e164, g.dst), '+')::numeric END AS dst_num
	FROM g;
	DROP TABLE pg_temp.fraud_hist;
	IF v_rules THEN
		CREATE INDEX ON fraud_att (tenant, start);
		ANALYZE fraud_att;
	END IF;
END $$;

-- The legs still in progress at an instant (the concurrency rules' history
-- above): found by their end, not by reading every leg of max_call_duration.
CREATE INDEX cdr_end_idx ON cdr ("end");

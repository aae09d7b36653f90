-- 0071_qos_recompute_once.sql - cdrflow_qos_recompute reads the batch's
-- RTCP legs once (issue 15: a batch's cost bounded by the batch).
--
-- 0064 named the batch's keys in each of the recompute's three reads of
-- qos_leg, so no read scans the table.  But the plan PL/pgSQL keeps for
-- the statement was made while qos_leg was nearly empty (estimates of one
-- row): nested loops that ran the per-leg aggregate, and a scan of the
-- whole key list, once per qos_leg row of the batch.  auto_explain on
-- bench-etl's stream: 64 rows updated with 8,895 buffer reads and 44 ms,
-- quadratic in the batch's RTCP legs (17 k buffers a batch at 5 M events).
-- Now the per-leg aggregate and the per-direction metrics are each
-- computed once (MATERIALIZED) and the UPDATE finds each row by its
-- primary key.  The same rows get the same values: only the plan changes.

CREATE OR REPLACE FUNCTION cdrflow_qos_recompute(p_node text, p_uniqueids text[]) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	WITH leg AS MATERIALIZED (
		SELECT node, uniqueid,
		       CASE WHEN sum(rtt_n) > 0 THEN sum(rtt_sum_s) / sum(rtt_n) * 1000 END AS rtt_ms,
		       -- the clock from the longest sender-report span of either direction
		       (array_agg(cdrflow_snap_clock(
				((sr_last_rtp - sr_first_rtp + 4294967296) % 4294967296)::double precision
				/ (sr_last_ntp - sr_first_ntp)::double precision)
			ORDER BY sr_last_ntp - sr_first_ntp DESC NULLS LAST)
			FILTER (WHERE sr_last_ntp - sr_first_ntp >= 1))[1] AS clock
		FROM qos_leg WHERE node = p_node AND uniqueid = ANY(p_uniqueids)
		GROUP BY node, uniqueid
	), r AS MATERIALIZED (
		SELECT q.node, q.uniqueid, q.direction, coalesce(l.clock, 8000) AS clock,
		       CASE WHEN l.clock IS NULL THEN 'default' ELSE 'sr' END AS clock_source,
		       l.rtt_ms,
		       CASE WHEN q.reports >= 2 AND NOT q.ssrc_changed AND q.ext_seq_last > q.ext_seq_first
			    THEN 100.0 * greatest(q.cum_lost_last - q.cum_lost_first, 0)
				 / (q.ext_seq_last - q.ext_seq_first) END AS loss_cum,
		       CASE WHEN q.reports > 0 THEN q.fraction_lost_sum / 2.56 / q.reports END AS loss_frac
		FROM qos_leg q JOIN leg l USING (node, uniqueid)
		WHERE q.node = p_node AND q.uniqueid = ANY(p_uniqueids) -- by key, as leg: not every row of qos_leg
	), m AS (
		SELECT r.*, least(coalesce(loss_cum, loss_frac), 100) AS loss, -- least() skips NULLs: guarded below
		       CASE WHEN loss_cum IS NOT NULL THEN 'cumulative' WHEN loss_frac IS NOT NULL THEN 'fraction' END
			 AS loss_method
		FROM r
	)
	UPDATE qos_leg q SET
		clock_rate = m.clock,
		clock_source = m.clock_source,
		loss_pct = CASE WHEN coalesce(m.loss_cum, m.loss_frac) IS NOT NULL THEN m.loss END, -- no report: unknown, not 100 %
		loss_method = m.loss_method,
		loss_pct_fraction = m.loss_frac,
		jitter_ms = CASE WHEN q.reports > 0 THEN q.jitter_ts_sum * 1000.0 / m.clock / q.reports END,
		jitter_max_ms = q.jitter_ts_max * 1000.0 / m.clock,
		rtt_ms = m.rtt_ms,
		latency_ms = coalesce(m.rtt_ms / 2, 0),
		r_factor = CASE WHEN q.reports > 0 THEN cdrflow_emodel_r(coalesce(m.rtt_ms / 2, 0),
				q.jitter_ts_sum * 1000.0 / m.clock / q.reports, m.loss) END,
		mos = CASE WHEN q.reports > 0 THEN cdrflow_mos(coalesce(m.rtt_ms / 2, 0),
				q.jitter_ts_sum * 1000.0 / m.clock / q.reports, m.loss) END
	FROM m
	-- one probe of the primary key per row of m
	WHERE q.node = m.node AND q.uniqueid = m.uniqueid AND q.direction = m.direction AND q.node = p_node;
END $$;

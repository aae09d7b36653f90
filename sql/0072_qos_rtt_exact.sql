-- 0072: qos_leg.rtt_sum_s an exact sum (issue 15: a replay gives the same
-- rows whatever its batches).
--
-- rtt_sum_s was a float8 sum, and each batch added its own part to it:
-- 0053 fixed the order within a batch, but where batches cut the events
-- still changed the last digit (0.0046 after one batch, 0.004599999999999999
-- after batches of 700 events), and rtt_ms, latency_ms, r_factor and mos
-- derive from it.  Asterisk prints RTT as a decimal (seconds): the step now
-- reads it as numeric and the column is numeric, so the sum is the same
-- for any batching or order; rtt_max_s and the derived columns stay double
-- precision (a max does not depend on order; the derived values are now
-- computed from exact sums).  A stored float8 sum converts with its 15
-- significant digits (0.0019999999999999996 -> 0.002).  The rest of 0053's
-- step is restated unchanged.

ALTER TABLE qos_leg ALTER COLUMN rtt_sum_s TYPE numeric USING rtt_sum_s::numeric;

CREATE OR REPLACE FUNCTION cdrflow_qos_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_legs text[];
	v_calls text[];
BEGIN
	WITH ev AS (
		SELECT e.node, e.uniqueid, e.linkedid, e.channel, e.seq, e.eventtime, e.fields,
		       CASE e.event WHEN 'RTCPSent' THEN 'rx' ELSE 'tx' END AS dir,
		       coalesce(nullif(e.fields->>'ReportCount', '')::int, 0) AS nblk
		FROM ami_event e
		WHERE e.node = p_node AND e.seq > p_seq_lo AND e.seq <= p_seq_hi
		  AND e.event IN ('RTCPSent', 'RTCPReceived') AND e.uniqueid IS NOT NULL AND e.uniqueid <> ''
	), blk AS (
		SELECT ev.node, ev.uniqueid, ev.dir, ev.seq, i,
		       ev.fields->>('Report' || i || 'SourceSSRC') AS ssrc,
		       (ev.fields->>('Report' || i || 'FractionLost'))::int AS fl,
		       cdrflow_rtcp_cumlost(ev.fields->>('Report' || i || 'CumulativeLost')) AS cum,
		       coalesce((ev.fields->>('Report' || i || 'SequenceNumberCycles'))::bigint, 0) * 65536
			 + (ev.fields->>('Report' || i || 'HighestSequence'))::bigint AS ext,
		       (ev.fields->>('Report' || i || 'IAJitter'))::bigint AS jit,
		       ev.fields->>('Report' || i || 'LSR') AS lsr
		FROM ev CROSS JOIN LATERAL generate_series(0, ev.nblk - 1) i
		WHERE ev.fields ? ('Report' || i || 'FractionLost')
	), b AS (
		SELECT node, uniqueid, dir, count(*) AS reports, sum(fl) AS fl_sum,
		       (array_agg(ssrc ORDER BY seq, i))[1] AS ssrc_first,
		       (array_agg(ssrc ORDER BY seq DESC, i DESC))[1] AS ssrc_last,
		       count(DISTINCT ssrc) > 1 AS ssrc_changed,
		       (array_agg(cum ORDER BY seq, i))[1] AS cum_first,
		       (array_agg(cum ORDER BY seq DESC, i DESC))[1] AS cum_last,
		       (array_agg(ext ORDER BY seq, i))[1] AS ext_first,
		       (array_agg(ext ORDER BY seq DESC, i DESC))[1] AS ext_last,
		       sum(jit) AS jit_sum, max(jit) AS jit_max
		FROM blk GROUP BY node, uniqueid, dir
	), e AS (
		SELECT node, uniqueid, dir, count(*) AS events, min(eventtime) AS t_first, max(eventtime) AS t_last,
		       (array_agg(linkedid ORDER BY seq DESC))[1] AS linkedid,
		       (array_agg(channel ORDER BY seq DESC))[1] AS channel,
		       count(*) FILTER (WHERE rtt_ok) AS rtt_n,
		       -- exact: numeric adds alike in any order and any batching (0072)
		       coalesce(sum(rtt) FILTER (WHERE rtt_ok), 0) AS rtt_sum,
		       max(rtt) FILTER (WHERE rtt_ok) AS rtt_max,
		       (array_agg(ntp ORDER BY seq) FILTER (WHERE is_sr))[1] AS ntp_first,
		       (array_agg(rtp ORDER BY seq) FILTER (WHERE is_sr))[1] AS rtp_first,
		       (array_agg(ntp ORDER BY seq DESC) FILTER (WHERE is_sr))[1] AS ntp_last,
		       (array_agg(rtp ORDER BY seq DESC) FILTER (WHERE is_sr))[1] AS rtp_last
		FROM (SELECT ev.*,
			     (fields->>'RTT')::numeric AS rtt,
			     dir = 'tx' AND nblk > 0 AND fields ? 'RTT' AND coalesce(fields->>'Report0LSR', '0') <> '0' AS rtt_ok,
			     fields->>'PT' LIKE '200%' AND fields ? 'SentNTP' AND fields ? 'SentRTP' AS is_sr,
			     CASE WHEN fields->>'PT' LIKE '200%' THEN (fields->>'SentNTP')::numeric END AS ntp,
			     CASE WHEN fields->>'PT' LIKE '200%' THEN (fields->>'SentRTP')::bigint END AS rtp
		      FROM ev) x
		GROUP BY node, uniqueid, dir
	), up AS (
		INSERT INTO qos_leg AS q (node, uniqueid, direction, linkedid, channel, first_report, last_report, events,
			reports, source_ssrc, last_ssrc, ssrc_changed, fraction_lost_sum, cum_lost_first, cum_lost_last,
			ext_seq_first, ext_seq_last, jitter_ts_sum, jitter_ts_max, rtt_n, rtt_sum_s, rtt_max_s,
			sr_first_ntp, sr_first_rtp, sr_last_ntp, sr_last_rtp)
		SELECT e.node, e.uniqueid, e.dir, e.linkedid, e.channel, e.t_first, e.t_last, e.events,
		       coalesce(b.reports, 0), b.ssrc_first, b.ssrc_last, coalesce(b.ssrc_changed, false),
		       coalesce(b.fl_sum, 0), b.cum_first, b.cum_last, b.ext_first, b.ext_last,
		       coalesce(b.jit_sum, 0), b.jit_max, e.rtt_n, e.rtt_sum, e.rtt_max,
		       e.ntp_first, e.rtp_first, e.ntp_last, e.rtp_last
		FROM e LEFT JOIN b USING (node, uniqueid, dir)
		ON CONFLICT (node, uniqueid, direction) DO UPDATE SET
			linkedid = coalesce(excluded.linkedid, q.linkedid),
			channel = coalesce(excluded.channel, q.channel),
			first_report = least(q.first_report, excluded.first_report),
			last_report = greatest(q.last_report, excluded.last_report),
			events = q.events + excluded.events,
			reports = q.reports + excluded.reports,
			source_ssrc = coalesce(q.source_ssrc, excluded.source_ssrc),
			last_ssrc = coalesce(excluded.last_ssrc, q.last_ssrc),
			ssrc_changed = q.ssrc_changed OR excluded.ssrc_changed
				OR (q.last_ssrc IS NOT NULL AND excluded.source_ssrc IS NOT NULL
				    AND q.last_ssrc <> excluded.source_ssrc),
			fraction_lost_sum = q.fraction_lost_sum + excluded.fraction_lost_sum,
			cum_lost_first = coalesce(q.cum_lost_first, excluded.cum_lost_first),
			cum_lost_last = coalesce(excluded.cum_lost_last, q.cum_lost_last),
			ext_seq_first = coalesce(q.ext_seq_first, excluded.ext_seq_first),
			ext_seq_last = coalesce(excluded.ext_seq_last, q.ext_seq_last),
			jitter_ts_sum = q.jitter_ts_sum + excluded.jitter_ts_sum,
			jitter_ts_max = greatest(q.jitter_ts_max, excluded.jitter_ts_max),
			rtt_n = q.rtt_n + excluded.rtt_n,
			rtt_sum_s = q.rtt_sum_s + excluded.rtt_sum_s,
			rtt_max_s = greatest(q.rtt_max_s, excluded.rtt_max_s),
			sr_first_ntp = coalesce(q.sr_first_ntp, excluded.sr_first_ntp),
			sr_first_rtp = CASE WHEN q.sr_first_ntp IS NULL THEN excluded.sr_first_rtp ELSE q.sr_first_rtp END,
			sr_last_ntp = coalesce(excluded.sr_last_ntp, q.sr_last_ntp),
			sr_last_rtp = CASE WHEN excluded.sr_last_ntp IS NULL THEN q.sr_last_rtp ELSE excluded.sr_last_rtp END
		RETURNING q.uniqueid
	)
	SELECT array_agg(DISTINCT uniqueid) INTO v_legs FROM up;
	IF v_legs IS NULL THEN
		v_legs := '{}';
	END IF;
	PERFORM cdrflow_qos_recompute(p_node, v_legs);

	-- calls closed in this batch, and calls closed earlier that got late reports
	SELECT array_agg(DISTINCT call_id) INTO v_calls FROM (
		SELECT call_id FROM call_batch WHERE node = p_node
		UNION
		SELECT c.call_id FROM qos_leg q JOIN call c ON c.node = q.node AND c.linkedids @> ARRAY[q.linkedid]
		WHERE q.node = p_node AND q.uniqueid = ANY(v_legs)
	) k;
	IF v_calls IS NOT NULL THEN
		PERFORM cdrflow_qos_update_calls(p_node, v_calls);
		UPDATE call_batch b SET worst_mos = c.worst_mos, worst_mos_leg = c.worst_mos_leg
		FROM call c WHERE c.node = b.node AND c.call_id = b.call_id AND b.node = p_node
		  AND c.worst_mos IS NOT NULL;
	END IF;
END $$;

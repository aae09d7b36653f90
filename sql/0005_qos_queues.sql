-- 0005_qos_queues.sql - voice quality per leg (RTCP) and queue/agent metrics.
--
-- Both families are analytics steps (0004): cdrflow_qos_step and
-- cdrflow_queue_step read the batch's ami_event rows and upsert partial
-- state, so an RTCP series or a queue visit split over several batches
-- ends up exactly as if it had been loaded in one.  Definitions, units and
-- edge cases: docs/metrics.md, sections "QoS" and "Queues and agents".

---------------------------------------------------------------------- QoS

-- The simplified E-model (docs/metrics.md "QoS"): R from the one-way
-- latency, the jitter (both ms) and the packet loss (percent).
CREATE FUNCTION cdrflow_emodel_r(latency_ms double precision, jitter_ms double precision,
				 loss_pct double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN el < 160 THEN 93.2 - el / 40 ELSE 93.2 - (el - 120) / 10 END
	       - 2.5 * greatest(coalesce(loss_pct, 0), 0)
	FROM (SELECT greatest(coalesce(latency_ms, 0), 0) + 2 * greatest(coalesce(jitter_ms, 0), 0) + 10 AS el) e
$$;

-- ITU-T G.107 R -> MOS, clamped to [1, 4.5].
CREATE FUNCTION cdrflow_r_to_mos(r double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN r IS NULL THEN NULL
		    WHEN r < 0 THEN 1.0
		    WHEN r > 100 THEN 4.5
		    ELSE least(4.5, greatest(1.0, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))) END
$$;

CREATE FUNCTION cdrflow_mos(latency_ms double precision, jitter_ms double precision,
			    loss_pct double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT cdrflow_r_to_mos(cdrflow_emodel_r(latency_ms, jitter_ms, loss_pct))
$$;

-- RTCP's cumulative number of packets lost is a 24-bit signed field that
-- Asterisk prints with %u: values from 2^23 on are negative.
CREATE FUNCTION cdrflow_rtcp_cumlost(v text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN x >= 8388608 THEN x - 16777216 ELSE x END
	FROM (SELECT (v::bigint & 16777215) AS x) s
$$;

-- The RTP clock rate nearest to an estimate (Hz); NULL if none is within 20 %.
CREATE FUNCTION cdrflow_snap_clock(est double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT c FROM unnest(ARRAY[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 90000]) c
	WHERE est > 0 AND abs(ln(est / c)) < ln(1.2)
	ORDER BY abs(ln(est / c)) LIMIT 1
$$;

-- One row per leg (channel) and direction:
--   rx = what Asterisk received from the far end, measured by Asterisk
--        (report blocks of RTCPSent);
--   tx = what Asterisk sent, as the far end reported it (report blocks of
--        RTCPReceived), plus the round-trip time (RTT of RTCPReceived).
-- The *_sum/_first/_last columns are the inputs, kept so the results can be
-- recomputed with another formula; the results are recomputed from them
-- whenever a batch brings more reports for the leg.
CREATE TABLE qos_leg (
	node            text NOT NULL,
	uniqueid        text NOT NULL,
	direction       text NOT NULL CHECK (direction IN ('rx', 'tx')),
	linkedid        text,
	channel         text,
	call_id         text,                     -- call.call_id once the call is written
	first_report    timestamptz NOT NULL,
	last_report     timestamptz NOT NULL,
	events          integer NOT NULL DEFAULT 0, -- RTCP events of this type on the leg
	reports         integer NOT NULL DEFAULT 0, -- report blocks used
	source_ssrc     text,                     -- SSRC of the stream the blocks describe (first)
	last_ssrc       text,
	ssrc_changed    boolean NOT NULL DEFAULT false,
	fraction_lost_sum bigint NOT NULL DEFAULT 0,  -- sum of raw FractionLost (1/256)
	cum_lost_first  bigint,                   -- CumulativeLost, decoded, first/last block
	cum_lost_last   bigint,
	ext_seq_first   bigint,                   -- SequenceNumberCycles * 65536 + HighestSequence
	ext_seq_last    bigint,
	jitter_ts_sum   bigint NOT NULL DEFAULT 0, -- IAJitter, RTP timestamp units
	jitter_ts_max   bigint,
	rtt_n           integer NOT NULL DEFAULT 0, -- RTT samples (tx rows only; blocks with LSR <> 0)
	rtt_sum_s       double precision NOT NULL DEFAULT 0,
	rtt_max_s       double precision,
	sr_first_ntp    numeric,                  -- this event type's own sender reports:
	sr_first_rtp    bigint,                   -- first/last (SentNTP, SentRTP), for the clock rate
	sr_last_ntp     numeric,
	sr_last_rtp     bigint,
	-- results
	clock_rate      integer,                  -- Hz, of the leg (both rows agree)
	clock_source    text,                     -- 'sr' (estimated from sender reports) or 'default' (8000)
	loss_pct        double precision,
	loss_method     text,                     -- 'cumulative' or 'fraction'
	loss_pct_fraction double precision,       -- mean FractionLost/2.56
	jitter_ms       double precision,
	jitter_max_ms   double precision,
	rtt_ms          double precision,         -- mean RTT of the leg (from its tx row)
	latency_ms      double precision,         -- rtt_ms / 2 (0 when no RTT is known)
	r_factor        double precision,
	mos             double precision,
	PRIMARY KEY (node, uniqueid, direction)
);
CREATE INDEX qos_leg_linkedid_idx ON qos_leg (node, linkedid);
CREATE INDEX qos_leg_call_idx ON qos_leg (call_id);
CREATE INDEX qos_leg_last_report_idx ON qos_leg (last_report);

ALTER TABLE call
	ADD COLUMN worst_mos     double precision,    -- min(qos_leg.mos) over the call's legs and directions
	ADD COLUMN worst_mos_leg text;                -- uniqueid/direction of that row

-- Recompute the results of the given legs (both directions).
CREATE FUNCTION cdrflow_qos_recompute(p_node text, p_uniqueids text[]) RETURNS void
LANGUAGE sql AS $$
	WITH leg AS (
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
	), r AS (
		SELECT q.node, q.uniqueid, q.direction, coalesce(l.clock, 8000) AS clock,
		       CASE WHEN l.clock IS NULL THEN 'default' ELSE 'sr' END AS clock_source,
		       l.rtt_ms,
		       CASE WHEN q.reports >= 2 AND NOT q.ssrc_changed AND q.ext_seq_last > q.ext_seq_first
			    THEN 100.0 * greatest(q.cum_lost_last - q.cum_lost_first, 0)
				 / (q.ext_seq_last - q.ext_seq_first) END AS loss_cum,
		       CASE WHEN q.reports > 0 THEN q.fraction_lost_sum / 2.56 / q.reports END AS loss_frac
		FROM qos_leg q JOIN leg l USING (node, uniqueid)
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
	WHERE q.node = m.node AND q.uniqueid = m.uniqueid AND q.direction = m.direction
$$;

-- The worst MOS of the given calls (node, call_id), from every qos_leg row
-- whose linkedid belongs to the call.
CREATE FUNCTION cdrflow_qos_update_calls(p_node text, p_call_ids text[]) RETURNS void
LANGUAGE sql AS $$
	UPDATE qos_leg q SET call_id = c.call_id
	FROM call c
	WHERE c.node = p_node AND c.call_id = ANY(p_call_ids) AND q.node = c.node
	  AND q.linkedid = ANY(c.linkedids) AND q.call_id IS DISTINCT FROM c.call_id;
	UPDATE call c SET worst_mos = w.mos, worst_mos_leg = w.leg
	FROM (SELECT DISTINCT ON (c2.call_id) c2.call_id, q.mos, q.uniqueid || '/' || q.direction AS leg
	      FROM call c2 JOIN qos_leg q ON q.node = c2.node AND q.linkedid = ANY(c2.linkedids)
	      WHERE c2.node = p_node AND c2.call_id = ANY(p_call_ids) AND q.mos IS NOT NULL
	      ORDER BY c2.call_id, q.mos, q.uniqueid, q.direction) w
	WHERE c.node = p_node AND c.call_id = w.call_id
	  AND (c.worst_mos IS DISTINCT FROM w.mos OR c.worst_mos_leg IS DISTINCT FROM w.leg);
$$;

CREATE FUNCTION cdrflow_qos_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
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
		       coalesce(sum(rtt) FILTER (WHERE rtt_ok), 0) AS rtt_sum,
		       max(rtt) FILTER (WHERE rtt_ok) AS rtt_max,
		       (array_agg(ntp ORDER BY seq) FILTER (WHERE is_sr))[1] AS ntp_first,
		       (array_agg(rtp ORDER BY seq) FILTER (WHERE is_sr))[1] AS rtp_first,
		       (array_agg(ntp ORDER BY seq DESC) FILTER (WHERE is_sr))[1] AS ntp_last,
		       (array_agg(rtp ORDER BY seq DESC) FILTER (WHERE is_sr))[1] AS rtp_last
		FROM (SELECT ev.*,
			     (fields->>'RTT')::double precision AS rtt,
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

INSERT INTO analytics_step (fn, ord) VALUES ('cdrflow_qos_step', 50);

------------------------------------------------------------------- queues

-- One row per caller visit to a queue, from the AMI stream (source 'ami')
-- or from Asterisk's queue_log file (source 'queue_log').  The same visit
-- appears once per source; queue_call_compare pairs them.
CREATE TABLE queue_call (
	id              bigserial PRIMARY KEY,
	source          text NOT NULL CHECK (source IN ('ami', 'queue_log')),
	node            text NOT NULL,
	queue           text NOT NULL,
	caller_uniqueid text NOT NULL,
	linkedid        text,
	caller_num      text,
	join_time       timestamptz NOT NULL,
	join_position   integer,
	connect_time    timestamptz,
	agent           text,                     -- member name (queue_log agent field)
	agent_interface text,
	agent_uniqueid  text,                     -- the member channel that answered
	hold_s          integer,                  -- wait until answered (Asterisk's HoldTime / CONNECT data1)
	ring_s          integer,                  -- ring time of the answering member
	exit_time       timestamptz,              -- left unanswered
	exit_reason     text,                     -- abandoned, timeout, exit_empty, exit_key, withdraw
	exit_wait_s     integer,                  -- wait until it left unanswered
	exit_position   integer,
	leave_time      timestamptz,              -- AMI QueueCallerLeave
	complete_time   timestamptz,
	talk_s          integer,
	complete_reason text,                     -- caller, agent, transfer
	outcome         text GENERATED ALWAYS AS (
		CASE WHEN connect_time IS NOT NULL THEN 'answered'
		     WHEN exit_reason IS NOT NULL THEN exit_reason
		     WHEN leave_time IS NOT NULL THEN 'exited'
		     ELSE 'waiting' END) STORED,
	wait_s          integer GENERATED ALWAYS AS (
		CASE WHEN connect_time IS NOT NULL THEN hold_s
		     WHEN exit_reason IS NOT NULL THEN exit_wait_s
		     WHEN leave_time IS NOT NULL THEN floor(extract(epoch FROM leave_time - join_time))::integer
		END) STORED,
	UNIQUE (source, node, caller_uniqueid, queue, join_time)
);
CREATE INDEX queue_call_join_idx ON queue_call (join_time, queue);
CREATE INDEX queue_call_visit_idx ON queue_call (node, caller_uniqueid, queue, join_time);

-- One row per attempt to reach a member (AMI: per AgentCalled, keyed by the
-- member channel; queue_log: per CONNECT, RINGNOANSWER, RINGCANCELED).
CREATE TABLE queue_agent_call (
	id              bigserial PRIMARY KEY,
	source          text NOT NULL CHECK (source IN ('ami', 'queue_log')),
	node            text NOT NULL,
	queue           text NOT NULL,
	caller_uniqueid text NOT NULL,
	agent           text NOT NULL,
	agent_interface text,
	agent_uniqueid  text,                     -- NULL for queue_log ring outcomes
	called_at       timestamptz,              -- AMI AgentCalled
	connected_at    timestamptz,
	hold_s          integer,
	ring_s          integer,                  -- AgentConnect RingTime / CONNECT data3
	ring_end_at     timestamptz,              -- RINGNOANSWER / RINGCANCELED
	ring_ms         integer,                  -- their ring time (milliseconds)
	ring_result     text,                     -- ringnoanswer, canceled
	completed_at    timestamptz,
	talk_s          integer,
	complete_reason text,
	outcome         text GENERATED ALWAYS AS (
		CASE WHEN connected_at IS NOT NULL THEN 'answered'
		     WHEN ring_result IS NOT NULL THEN ring_result
		     ELSE 'not_answered' END) STORED,
	UNIQUE (source, node, agent_uniqueid)
);
CREATE INDEX queue_agent_call_agent_idx ON queue_agent_call (agent, connected_at);
CREATE INDEX queue_agent_call_caller_idx ON queue_agent_call (node, caller_uniqueid);

-- Membership and pause changes (AMI QueueMemberAdded/Removed/Pause,
-- queue_log ADDMEMBER/REMOVEMEMBER/PAUSE/UNPAUSE/PAUSEALL/UNPAUSEALL),
-- for occupancy.  kind: login, logoff, pause, unpause.  queue NULL = all.
CREATE TABLE queue_agent_state (
	source          text NOT NULL CHECK (source IN ('ami', 'queue_log')),
	node            text NOT NULL,
	agent           text NOT NULL,
	queue           text,
	at              timestamptz NOT NULL,
	kind            text NOT NULL CHECK (kind IN ('login', 'logoff', 'pause', 'unpause')),
	reason          text,
	seq             bigint NOT NULL DEFAULT 0
);
CREATE INDEX queue_agent_state_idx ON queue_agent_state (source, node, agent, at);

-- The raw queue_log lines imported (backfill), one per distinct line.
CREATE TABLE queue_log_line (
	node            text NOT NULL,
	time            timestamptz NOT NULL,
	callid          text NOT NULL,
	queuename       text NOT NULL,
	agent           text NOT NULL,
	event           text NOT NULL,
	data            text[] NOT NULL,
	line_no         integer NOT NULL,         -- position in the first file it came from
	UNIQUE (node, time, callid, queuename, agent, event, data)
);

-- Normalised queue events: what both sources are reduced to before they
-- are applied (cdrflow_queue_apply).  kind: join, connect, complete, exit,
-- leave, called, ringnoanswer, canceled.
CREATE FUNCTION cdrflow_queue_ev_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF to_regclass('pg_temp.queue_ev') IS NULL THEN
		CREATE TEMP TABLE queue_ev (
			kind text NOT NULL, node text NOT NULL, queue text NOT NULL, caller_uniqueid text NOT NULL,
			linkedid text, caller_num text, at timestamptz NOT NULL, seq bigint NOT NULL,
			agent text, agent_interface text, agent_uniqueid text,
			pos integer, hold_s integer, ring_s integer, ring_ms integer, talk_s integer, wait_s integer,
			reason text
		) ON COMMIT DROP;
	ELSE
		TRUNCATE queue_ev;
	END IF;
END $$;

-- Apply the rows of queue_ev (one source) to queue_call and
-- queue_agent_call.  Each visit is matched by (node, caller, queue) and the
-- latest join at or before the event, so events of a visit may come in any
-- number of batches (joins first, as Asterisk sends them).
CREATE FUNCTION cdrflow_queue_apply(p_source text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO queue_call (source, node, queue, caller_uniqueid, linkedid, caller_num, join_time, join_position)
	SELECT p_source, node, queue, caller_uniqueid, linkedid, caller_num, at, pos
	FROM queue_ev WHERE kind = 'join'
	ON CONFLICT (source, node, caller_uniqueid, queue, join_time) DO NOTHING;

	-- the visit each event belongs to
	CREATE TEMP TABLE IF NOT EXISTS queue_ev_visit (ev_seq bigint, kind text, visit bigint) ON COMMIT DROP;
	TRUNCATE queue_ev_visit;
	INSERT INTO queue_ev_visit
	SELECT e.seq, e.kind, v.id
	FROM queue_ev e CROSS JOIN LATERAL (
		SELECT id FROM queue_call c
		WHERE c.source = p_source AND c.node = e.node AND c.caller_uniqueid = e.caller_uniqueid
		  AND c.queue = e.queue AND c.join_time <= e.at
		ORDER BY c.join_time DESC LIMIT 1) v
	WHERE e.kind <> 'join';

	UPDATE queue_call c SET connect_time = e.at, agent = e.agent, agent_interface = e.agent_interface,
		agent_uniqueid = e.agent_uniqueid, hold_s = e.hold_s, ring_s = e.ring_s
	FROM queue_ev e JOIN queue_ev_visit v ON v.ev_seq = e.seq AND v.kind = e.kind
	WHERE e.kind = 'connect' AND c.id = v.visit;

	UPDATE queue_call c SET exit_time = e.at, exit_reason = e.reason, exit_wait_s = e.wait_s, exit_position = e.pos
	FROM queue_ev e JOIN queue_ev_visit v ON v.ev_seq = e.seq AND v.kind = e.kind
	WHERE e.kind = 'exit' AND c.id = v.visit;

	UPDATE queue_call c SET leave_time = e.at
	FROM queue_ev e JOIN queue_ev_visit v ON v.ev_seq = e.seq AND v.kind = e.kind
	WHERE e.kind = 'leave' AND c.id = v.visit;

	UPDATE queue_call c SET complete_time = e.at, talk_s = e.talk_s, complete_reason = e.reason
	FROM queue_ev e JOIN queue_ev_visit v ON v.ev_seq = e.seq AND v.kind = e.kind
	WHERE e.kind = 'complete' AND c.id = v.visit;

	-- member attempts: keyed by the member channel where the source names
	-- it (AMI always; queue_log CONNECT), else one row per event
	UPDATE queue_ev e SET agent_uniqueid = c.agent_uniqueid
	FROM queue_ev_visit v JOIN queue_call c ON c.id = v.visit
	WHERE e.kind = 'complete' AND e.agent_uniqueid IS NULL AND v.ev_seq = e.seq AND v.kind = e.kind;

	INSERT INTO queue_agent_call AS a (source, node, queue, caller_uniqueid, agent, agent_interface,
		agent_uniqueid, called_at, connected_at, hold_s, ring_s, ring_end_at, ring_ms, ring_result,
		completed_at, talk_s, complete_reason)
	SELECT p_source, e.node, (array_agg(e.queue ORDER BY e.seq))[1], (array_agg(e.caller_uniqueid ORDER BY e.seq))[1],
	       coalesce((array_agg(e.agent ORDER BY e.seq) FILTER (WHERE e.agent IS NOT NULL))[1], ''),
	       (array_agg(e.agent_interface ORDER BY e.seq) FILTER (WHERE e.agent_interface IS NOT NULL))[1],
	       e.agent_uniqueid,
	       min(e.at) FILTER (WHERE e.kind = 'called'),
	       min(e.at) FILTER (WHERE e.kind = 'connect'),
	       min(e.hold_s) FILTER (WHERE e.kind IN ('connect', 'complete')),
	       min(e.ring_s) FILTER (WHERE e.kind = 'connect'),
	       min(e.at) FILTER (WHERE e.kind IN ('ringnoanswer', 'canceled')),
	       min(e.ring_ms) FILTER (WHERE e.kind IN ('ringnoanswer', 'canceled')),
	       min(e.kind) FILTER (WHERE e.kind IN ('ringnoanswer', 'canceled')),
	       min(e.at) FILTER (WHERE e.kind = 'complete'),
	       min(e.talk_s) FILTER (WHERE e.kind = 'complete'),
	       min(e.reason) FILTER (WHERE e.kind = 'complete')
	FROM queue_ev e
	WHERE e.kind IN ('called', 'connect', 'complete', 'ringnoanswer', 'canceled') AND e.agent_uniqueid IS NOT NULL
	GROUP BY e.node, e.agent_uniqueid
	ON CONFLICT (source, node, agent_uniqueid) DO UPDATE SET
		agent = CASE WHEN a.agent = '' THEN excluded.agent ELSE a.agent END,
		agent_interface = coalesce(a.agent_interface, excluded.agent_interface),
		called_at = coalesce(a.called_at, excluded.called_at),
		connected_at = coalesce(a.connected_at, excluded.connected_at),
		hold_s = coalesce(a.hold_s, excluded.hold_s),
		ring_s = coalesce(a.ring_s, excluded.ring_s),
		ring_end_at = coalesce(a.ring_end_at, excluded.ring_end_at),
		ring_ms = coalesce(a.ring_ms, excluded.ring_ms),
		ring_result = coalesce(a.ring_result, excluded.ring_result),
		completed_at = coalesce(a.completed_at, excluded.completed_at),
		talk_s = coalesce(a.talk_s, excluded.talk_s),
		complete_reason = coalesce(a.complete_reason, excluded.complete_reason);

	INSERT INTO queue_agent_call (source, node, queue, caller_uniqueid, agent, agent_interface, ring_end_at,
		ring_ms, ring_result)
	SELECT p_source, node, queue, caller_uniqueid, coalesce(agent, ''), agent_interface, at, ring_ms, kind
	FROM queue_ev WHERE kind IN ('ringnoanswer', 'canceled') AND agent_uniqueid IS NULL;
END $$;

-- The analytics step: the batch's queue and member events from ami_event.
CREATE FUNCTION cdrflow_queue_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM cdrflow_queue_ev_table();
	INSERT INTO queue_ev (kind, node, queue, caller_uniqueid, linkedid, caller_num, at, seq, agent,
		agent_interface, agent_uniqueid, pos, hold_s, ring_s, ring_ms, talk_s, wait_s, reason)
	SELECT CASE e.event
		WHEN 'QueueCallerJoin' THEN 'join'
		WHEN 'QueueCallerLeave' THEN 'leave'
		WHEN 'QueueCallerAbandon' THEN 'exit'
		WHEN 'AgentCalled' THEN 'called'
		WHEN 'AgentConnect' THEN 'connect'
		WHEN 'AgentComplete' THEN 'complete'
		WHEN 'AgentRingNoAnswer' THEN 'ringnoanswer' END,
	       e.node, f->>'Queue', e.uniqueid, e.linkedid, f->>'CallerIDNum', e.eventtime, e.seq,
	       f->>'MemberName', f->>'Interface', nullif(f->>'DestUniqueid', ''),
	       CASE WHEN e.event = 'QueueCallerAbandon' THEN (f->>'Position')::int
		    WHEN e.event = 'QueueCallerJoin' THEN (f->>'Position')::int END,
	       CASE WHEN e.event IN ('AgentConnect', 'AgentComplete') THEN (f->>'HoldTime')::int END,
	       CASE WHEN e.event = 'AgentConnect' THEN (f->>'RingTime')::int END,
	       CASE WHEN e.event = 'AgentRingNoAnswer' THEN (f->>'RingTime')::int END,
	       CASE WHEN e.event = 'AgentComplete' THEN (f->>'TalkTime')::int END,
	       CASE WHEN e.event = 'QueueCallerAbandon' THEN (f->>'HoldTime')::int END,
	       CASE WHEN e.event = 'AgentComplete' THEN f->>'Reason'
		    -- QueueCallerAbandon is also sent when Queue() times out (and, in
		    -- some versions, leaves an empty queue): it is an abandon only if
		    -- the caller had hung up before it
		    WHEN e.event = 'QueueCallerAbandon' THEN
			CASE WHEN EXISTS (SELECT 1 FROM ami_event h
					  WHERE h.node = e.node AND h.uniqueid = e.uniqueid AND h.seq < e.seq
					    AND h.event IN ('HangupRequest', 'SoftHangupRequest', 'Hangup')
					    AND h.eventtime >= e.eventtime - make_interval(secs => coalesce((f->>'HoldTime')::int, 0) + 1))
			     THEN 'abandoned' ELSE 'timeout' END END
	FROM ami_event e CROSS JOIN LATERAL (SELECT e.fields AS f) x
	WHERE e.node = p_node AND e.seq > p_seq_lo AND e.seq <= p_seq_hi
	  AND e.event IN ('QueueCallerJoin', 'QueueCallerLeave', 'QueueCallerAbandon', 'AgentCalled', 'AgentConnect',
			  'AgentComplete', 'AgentRingNoAnswer')
	  AND e.uniqueid IS NOT NULL AND f ? 'Queue';
	PERFORM cdrflow_queue_apply('ami');

	INSERT INTO queue_agent_state (source, node, agent, queue, at, kind, reason, seq)
	SELECT 'ami', e.node, coalesce(e.fields->>'MemberName', e.fields->>'Interface'), e.fields->>'Queue', e.eventtime,
	       CASE e.event WHEN 'QueueMemberAdded' THEN 'login' WHEN 'QueueMemberRemoved' THEN 'logoff'
		    ELSE CASE WHEN e.fields->>'Paused' IN ('1', 'true') THEN 'pause' ELSE 'unpause' END END,
	       nullif(coalesce(e.fields->>'PausedReason', e.fields->>'Reason'), ''), e.seq
	FROM ami_event e
	WHERE e.node = p_node AND e.seq > p_seq_lo AND e.seq <= p_seq_hi
	  AND e.event IN ('QueueMemberAdded', 'QueueMemberRemoved', 'QueueMemberPause', 'QueueMemberPaused');
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('cdrflow_queue_step', 60);

-- Backfill from Asterisk's queue_log file: content is the file's text
-- (psql: \set content `cat queue_log` then SELECT cdrflow_import_queue_log('node', :'content')).
-- Lines already imported are skipped; the visits of every caller the file
-- mentions are rebuilt from all its lines.  Returns the number of new lines.
CREATE FUNCTION cdrflow_import_queue_log(p_node text, p_content text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS queue_log_in (line_no integer, time timestamptz, callid text, queuename text,
		agent text, event text, data text[]) ON COMMIT DROP;
	TRUNCATE queue_log_in;
	INSERT INTO queue_log_in
	SELECT l.n, to_timestamp(p[1]::bigint), p[2], p[3], p[4], p[5], coalesce(p[6:], '{}')
	FROM regexp_split_to_table(p_content, E'\r?\n') WITH ORDINALITY AS l(line, n)
	CROSS JOIN LATERAL string_to_array(l.line, '|') AS p
	WHERE l.line ~ '^[0-9]+\|[^|]*\|[^|]*\|[^|]*\|[^|]+';

	WITH ins AS (
		INSERT INTO queue_log_line (node, time, callid, queuename, agent, event, data, line_no)
		SELECT DISTINCT ON (time, callid, queuename, agent, event, data)
		       p_node, time, callid, queuename, agent, event, data, line_no
		FROM queue_log_in ORDER BY time, callid, queuename, agent, event, data, line_no
		ON CONFLICT DO NOTHING RETURNING 1)
	SELECT count(*) INTO n FROM ins;

	-- rebuild the callers this file mentions
	DELETE FROM queue_agent_call WHERE source = 'queue_log' AND node = p_node
	  AND caller_uniqueid IN (SELECT callid FROM queue_log_in);
	DELETE FROM queue_call WHERE source = 'queue_log' AND node = p_node
	  AND caller_uniqueid IN (SELECT callid FROM queue_log_in);
	PERFORM cdrflow_queue_ev_table();
	INSERT INTO queue_ev (kind, node, queue, caller_uniqueid, caller_num, at, seq, agent, agent_uniqueid, pos,
		hold_s, ring_s, ring_ms, talk_s, wait_s, reason)
	SELECT CASE WHEN event = 'ENTERQUEUE' THEN 'join'
		    WHEN event = 'CONNECT' THEN 'connect'
		    WHEN event IN ('COMPLETECALLER', 'COMPLETEAGENT', 'BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN 'complete'
		    WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'EXITWITHKEY', 'WITHDRAW') THEN 'exit'
		    WHEN event = 'RINGNOANSWER' THEN 'ringnoanswer'
		    WHEN event = 'RINGCANCELED' THEN 'canceled' END,
	       node, queuename, callid,
	       CASE WHEN event = 'ENTERQUEUE' THEN data[2] END,
	       time, row_number() OVER (ORDER BY time, line_no),
	       nullif(agent, 'NONE'),
	       CASE WHEN event = 'CONNECT' THEN nullif(data[2], '') END,
	       CASE WHEN event = 'ENTERQUEUE' THEN nullif(data[3], '')::int
		    WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN nullif(data[1], '')::int
		    WHEN event = 'EXITWITHKEY' THEN nullif(data[2], '')::int END,
	       CASE WHEN event IN ('CONNECT', 'COMPLETECALLER', 'COMPLETEAGENT') THEN nullif(data[1], '')::int
		    WHEN event IN ('BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN nullif(data[cardinality(data) - 2], '')::int END,
	       CASE WHEN event = 'CONNECT' THEN nullif(data[3], '')::int END,
	       CASE WHEN event IN ('RINGNOANSWER', 'RINGCANCELED') THEN nullif(data[1], '')::int END,
	       CASE WHEN event IN ('COMPLETECALLER', 'COMPLETEAGENT') THEN nullif(data[2], '')::int
		    WHEN event IN ('BLINDTRANSFER', 'ATTENDEDTRANSFER') THEN nullif(data[cardinality(data) - 1], '')::int END,
	       CASE WHEN event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN nullif(data[3], '')::int
		    WHEN event = 'EXITWITHKEY' THEN nullif(data[4], '')::int END,
	       CASE event WHEN 'COMPLETECALLER' THEN 'caller' WHEN 'COMPLETEAGENT' THEN 'agent'
		    WHEN 'BLINDTRANSFER' THEN 'transfer' WHEN 'ATTENDEDTRANSFER' THEN 'transfer'
		    WHEN 'ABANDON' THEN 'abandoned' WHEN 'EXITWITHTIMEOUT' THEN 'timeout'
		    WHEN 'EXITEMPTY' THEN 'exit_empty' WHEN 'EXITWITHKEY' THEN 'exit_key' WHEN 'WITHDRAW' THEN 'withdraw' END
	FROM queue_log_line
	WHERE node = p_node AND callid IN (SELECT callid FROM queue_log_in)
	  AND event IN ('ENTERQUEUE', 'CONNECT', 'COMPLETECALLER', 'COMPLETEAGENT', 'BLINDTRANSFER', 'ATTENDEDTRANSFER',
			'ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'EXITWITHKEY', 'WITHDRAW', 'RINGNOANSWER', 'RINGCANCELED');
	PERFORM cdrflow_queue_apply('queue_log');

	-- membership and pauses (whole node, rebuilt)
	DELETE FROM queue_agent_state WHERE source = 'queue_log' AND node = p_node;
	INSERT INTO queue_agent_state (source, node, agent, queue, at, kind, reason, seq)
	SELECT 'queue_log', node, agent, nullif(queuename, 'NONE'), time,
	       CASE WHEN event IN ('ADDMEMBER', 'AGENTLOGIN') THEN 'login'
		    WHEN event IN ('REMOVEMEMBER', 'AGENTLOGOFF') THEN 'logoff'
		    WHEN event IN ('PAUSE', 'PAUSEALL') THEN 'pause' ELSE 'unpause' END,
	       CASE WHEN event IN ('PAUSE', 'UNPAUSE') THEN nullif(data[1], '') END, line_no
	FROM queue_log_line
	WHERE node = p_node AND agent <> 'NONE'
	  AND event IN ('ADDMEMBER', 'REMOVEMEMBER', 'AGENTLOGIN', 'AGENTLOGOFF', 'PAUSE', 'UNPAUSE', 'PAUSEALL', 'UNPAUSEALL');
	RETURN n;
END $$;

-- The AMI-derived and queue_log-derived visits side by side: the same
-- caller, queue and join second (queue_log has whole seconds).
CREATE VIEW queue_call_compare AS
SELECT coalesce(a.node, l.node) AS node, coalesce(a.queue, l.queue) AS queue,
       coalesce(a.caller_uniqueid, l.caller_uniqueid) AS caller_uniqueid,
       a.join_time AS ami_join, l.join_time AS log_join,
       a.outcome AS ami_outcome, l.outcome AS log_outcome,
       a.wait_s AS ami_wait_s, l.wait_s AS log_wait_s,
       a.agent AS ami_agent, l.agent AS log_agent,
       a.talk_s AS ami_talk_s, l.talk_s AS log_talk_s,
       a.id IS NOT NULL AND l.id IS NOT NULL AND a.outcome = l.outcome
	 AND a.wait_s IS NOT DISTINCT FROM l.wait_s AND a.agent IS NOT DISTINCT FROM l.agent
	 AND a.talk_s IS NOT DISTINCT FROM l.talk_s AS agrees
FROM (SELECT * FROM queue_call WHERE source = 'ami') a
FULL JOIN (SELECT * FROM queue_call WHERE source = 'queue_log') l
  ON l.node = a.node AND l.caller_uniqueid = a.caller_uniqueid AND l.queue = a.queue
 AND abs(extract(epoch FROM l.join_time - date_trunc('second', a.join_time))) <= 1;

-- Per queue and interval (buckets of p_interval from p_from, by join time).
-- S = p_short_abandon_s (0: none), T = p_sl_threshold_s.  See docs/metrics.md.
CREATE FUNCTION cdrflow_queue_stats(p_from timestamptz, p_to timestamptz, p_interval interval,
				    p_short_abandon_s integer DEFAULT 0, p_sl_threshold_s integer DEFAULT 20,
				    p_source text DEFAULT 'ami', p_node text DEFAULT NULL)
RETURNS TABLE (node text, queue text, bucket timestamptz, entered bigint, offered bigint, answered bigint,
	       abandoned bigint, short_abandoned bigint, timeouts bigint, exits_other bigint, waiting bigint,
	       answered_within_t bigint, abandoned_within_t bigint, abandoned_after_t bigint,
	       sl_pct double precision, sl1_pct double precision, sl2_pct double precision, sl3_pct double precision,
	       abandon_rate_pct double precision, asa_s double precision, avg_wait_s double precision,
	       max_wait_s integer, avg_abandon_wait_s double precision, aht_s double precision)
LANGUAGE sql STABLE AS $$
	WITH v AS (
		SELECT c.*, date_bin(p_interval, c.join_time, p_from) AS b,
		       c.outcome = 'abandoned' AND p_short_abandon_s > 0 AND c.wait_s <= p_short_abandon_s AS short
		FROM queue_call c
		WHERE c.source = p_source AND (p_node IS NULL OR c.node = p_node)
		  AND c.join_time >= p_from AND c.join_time < p_to
	), a AS (
		SELECT v.node, v.queue, v.b,
		       count(*) AS entered,
		       count(*) FILTER (WHERE NOT v.short) AS offered,
		       count(*) FILTER (WHERE v.outcome = 'answered') AS answered,
		       count(*) FILTER (WHERE v.outcome = 'abandoned' AND NOT v.short) AS abandoned,
		       count(*) FILTER (WHERE v.short) AS short_abandoned,
		       count(*) FILTER (WHERE v.outcome = 'timeout') AS timeouts,
		       count(*) FILTER (WHERE v.outcome IN ('exit_empty', 'exit_key', 'withdraw', 'exited')) AS exits_other,
		       count(*) FILTER (WHERE v.outcome = 'waiting') AS waiting,
		       count(*) FILTER (WHERE v.outcome = 'answered' AND v.wait_s <= p_sl_threshold_s) AS ans_t,
		       count(*) FILTER (WHERE v.outcome = 'abandoned' AND NOT v.short AND v.wait_s <= p_sl_threshold_s) AS ab_in,
		       count(*) FILTER (WHERE v.outcome = 'abandoned' AND NOT v.short AND v.wait_s > p_sl_threshold_s) AS ab_after,
		       avg(v.wait_s) FILTER (WHERE v.outcome = 'answered') AS asa,
		       avg(v.wait_s) FILTER (WHERE NOT v.short AND v.outcome <> 'waiting') AS avg_wait,
		       max(v.wait_s) FILTER (WHERE NOT v.short AND v.outcome <> 'waiting') AS max_wait,
		       avg(v.wait_s) FILTER (WHERE v.outcome = 'abandoned' AND NOT v.short) AS avg_ab_wait,
		       avg(v.talk_s) FILTER (WHERE v.outcome = 'answered' AND v.talk_s IS NOT NULL) AS aht
		FROM v GROUP BY v.node, v.queue, v.b
	)
	SELECT a.node, a.queue, a.b, a.entered, a.offered, a.answered, a.abandoned, a.short_abandoned, a.timeouts,
	       a.exits_other, a.waiting, a.ans_t, a.ab_in, a.ab_after,
	       100.0 * a.ans_t / nullif(a.answered + a.ab_after, 0),
	       100.0 * (a.ans_t + a.ab_in) / nullif(a.answered + a.abandoned, 0),
	       100.0 * a.ans_t / nullif(a.answered, 0),
	       100.0 * a.ans_t / nullif(a.answered + a.abandoned, 0),
	       100.0 * a.abandoned / nullif(a.offered, 0),
	       a.asa::double precision, a.avg_wait::double precision, a.max_wait, a.avg_ab_wait::double precision,
	       a.aht::double precision
	FROM a ORDER BY a.node, a.queue, a.b
$$;

-- Per agent (member name) and interval, by the time the attempt started
-- (called, else connected, else the ring ended).
CREATE FUNCTION cdrflow_agent_stats(p_from timestamptz, p_to timestamptz, p_interval interval,
				    p_source text DEFAULT 'ami', p_node text DEFAULT NULL)
RETURNS TABLE (node text, agent text, bucket timestamptz, attempts bigint, answered bigint, talk_s bigint,
	       avg_talk_s double precision, ring_no_answer bigint, ring_canceled bigint,
	       available_s double precision, occupancy_pct double precision)
LANGUAGE sql STABLE AS $$
	WITH t AS (
		SELECT a.*, coalesce(a.called_at, a.connected_at, a.ring_end_at) AS t0
		FROM queue_agent_call a
		WHERE a.source = p_source AND (p_node IS NULL OR a.node = p_node)
	), s AS (
		SELECT t.node, t.agent, date_bin(p_interval, t.t0, p_from) AS b,
		       count(*) AS attempts,
		       count(*) FILTER (WHERE t.outcome = 'answered') AS answered,
		       sum(t.talk_s) FILTER (WHERE t.outcome = 'answered') AS talk_s,
		       avg(t.talk_s) FILTER (WHERE t.outcome = 'answered') AS avg_talk_s,
		       count(*) FILTER (WHERE t.outcome = 'ringnoanswer') AS rna,
		       count(*) FILTER (WHERE t.outcome = 'canceled') AS canceled
		FROM t WHERE t.t0 >= p_from AND t.t0 < p_to
		GROUP BY t.node, t.agent, date_bin(p_interval, t.t0, p_from)
	), st AS (
		-- the agent's state after each change: a member of >= 1 queue
		-- (running logins - logoffs), paused by the latest pause/unpause
		SELECT y.node, y.agent, y.at, y.until, y.members > 0 AS member,
		       coalesce(first_value(y.pk) OVER (PARTITION BY y.node, y.agent, y.pgrp ORDER BY y.at, y.seq),
				'unpause') = 'pause' AS paused
		FROM (
			SELECT q.node, q.agent, q.at, q.seq,
			       lead(q.at, 1, least(p_to, now())) OVER w AS until,
			       sum(CASE q.kind WHEN 'login' THEN 1 WHEN 'logoff' THEN -1 ELSE 0 END) OVER w AS members,
			       count(*) FILTER (WHERE q.kind IN ('pause', 'unpause')) OVER w AS pgrp,
			       CASE WHEN q.kind IN ('pause', 'unpause') THEN q.kind END AS pk
			FROM queue_agent_state q
			WHERE q.source = p_source AND (p_node IS NULL OR q.node = p_node) AND q.at < p_to
			WINDOW w AS (PARTITION BY q.node, q.agent ORDER BY q.at, q.seq)
		) y
	), avail AS (
		SELECT st.node, st.agent, range_agg(tstzrange(st.at, st.until)) AS r
		FROM st WHERE st.member AND NOT st.paused AND st.until > st.at
		GROUP BY st.node, st.agent
	), known AS (
		SELECT DISTINCT st.node, st.agent FROM st
	)
	SELECT s.node, s.agent, s.b, s.attempts, s.answered, s.talk_s, s.avg_talk_s::double precision, s.rna, s.canceled,
	       CASE WHEN k.agent IS NOT NULL THEN coalesce(
			(SELECT sum(extract(epoch FROM upper(x) - lower(x)))
			 FROM unnest(av.r * tstzmultirange(tstzrange(s.b, s.b + p_interval))) x), 0)::double precision END,
	       CASE WHEN k.agent IS NOT NULL THEN 100.0 * coalesce(s.talk_s, 0) / nullif(
			(SELECT sum(extract(epoch FROM upper(x) - lower(x)))
			 FROM unnest(av.r * tstzmultirange(tstzrange(s.b, s.b + p_interval))) x), 0) END
	FROM s LEFT JOIN known k ON k.node = s.node AND k.agent = s.agent
	       LEFT JOIN avail av ON av.node = s.node AND av.agent = s.agent
	ORDER BY s.node, s.agent, s.b
$$;

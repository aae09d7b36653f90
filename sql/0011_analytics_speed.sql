-- 0011_analytics_speed.sql - the analytics steps, same results, less work.
--
-- The steps of 0005 (QoS, queues), 0008 (fraud) and 0009 (rollups) made a
-- load about 2x slower than without them.  What each function read was
-- measured with pg_stat_user_functions, pg_stat_statements and EXPLAIN
-- (ANALYZE, BUFFERS) (docs/metrics.md "Analytics cost"); the fixes below
-- change how the results are computed, never what they are:
--
--  * fraud_build_attempts re-read (and turned into JSON) every leg of the
--    last max(rule window, max_call_duration) = 4 h on every batch, even
--    when no rule looks at history: a load got quadratic.  History is now
--    read in full only when a sliding-window rule is enabled; otherwise only
--    the legs sharing a conversation (node, linkedid) with the batch, which
--    is all an attempt of this batch can be made of.
--  * fraud_e164, cdrflow_e164, cdrflow_trunk were SQL functions with a FROM
--    clause: never inlined, one executor start per call (25,000 calls per
--    3 batches of s08).  Now single expressions, inlined by the planner.
--  * fraud_state_step ran 3 statements per state change; it now reads the
--    latest rows of each endpoint once and decides in memory, then inserts
--    the changes in one statement (same rows, same order, same ids).
--  * cdrflow_qos_update_calls joined every qos_leg row of the node with
--    every call of the batch through "= ANY(linkedids)" (no index usable);
--    it now goes through the (node, linkedid) index.
--  * partial indexes give the queue step its own events of the batch
--    without reading all the others.
--
-- Plans are chosen for tables without statistics too: during a first bulk
-- load autovacuum has not analyzed anything yet, and every "rows=1"
-- estimate turned a join into a nested loop over whole tables.

-- Some functions below use the per-batch temporary tables.
SET LOCAL check_function_bodies = off;

-- ------------------------------------------------------------ helpers

-- As in 0008: '+' and 3..15 digits when num is written internationally
-- (leading + or 00; spaces, dots, dashes, parentheses ignored), else NULL.
-- One expression (no FROM): inlined into the calling query.
CREATE OR REPLACE FUNCTION fraud_e164(num text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT '+' || substring(regexp_replace(coalesce(num, ''), '[[:space:]().-]', '', 'g')
				FROM '^(?:\+|00)([1-9][0-9]{2,14})$')
$$;

-- As in 0009: the international digits of a number, 4..15 digits after "+"
-- or 00 (then not starting with 0), else NULL.  One expression: inlined.
CREATE OR REPLACE FUNCTION cdrflow_e164(number text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT substring(regexp_replace(number, '[ ().-]', '', 'g') FROM '^(?:\+|00(?=[1-9]))([0-9]{4,15})$')
$$;

-- As in 0009: the trunk of a leg.  One expression: inlined.
CREATE OR REPLACE FUNCTION cdrflow_trunk(channel text, dstchannel text, direction text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(CASE WHEN direction = 'inbound'
			     THEN coalesce(CASE WHEN channel <> '' AND channel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(channel) END,
					   CASE WHEN dstchannel <> '' AND dstchannel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(dstchannel) END)
			     ELSE coalesce(CASE WHEN dstchannel <> '' AND dstchannel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(dstchannel) END,
					   CASE WHEN channel <> '' AND channel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(channel) END) END,
			'')
$$;

-- As in 0008, in plpgsql so its plan is cached between calls.
CREATE OR REPLACE FUNCTION fraud_cc(e164 text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
	r text;
BEGIN
	IF e164 IS NULL OR e164 NOT LIKE '+%' THEN
		RETURN NULL;
	END IF;
	SELECT c.prefix INTO r FROM country_code c
	WHERE c.prefix IN (substr(e164, 2, 1), substr(e164, 2, 2), substr(e164, 2, 3), substr(e164, 2, 4))
	ORDER BY length(c.prefix) DESC LIMIT 1;
	RETURN r;
END $$;

-- ------------------------------------------------------------ fraud attempts

-- Same table as 0008 (same columns, same rows for every attempt a rule can
-- see).  The rules that look at attempts outside the batch are the sliding
-- windows (every kind but hotlist, new_country, out_of_hours and the ones
-- not evaluated over attempts); without one of them enabled, the history
-- read is restricted to the batch's conversations: an attempt is grouped
-- by (node, linkedid, dst, direction), so its legs are the batch's legs
-- and the earlier legs of the same (node, linkedid), still within the same
-- calldate range as before.
CREATE OR REPLACE FUNCTION fraud_build_attempts() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_lo timestamptz;
	v_hi timestamptz;
	v_back interval;
	v_fwd interval;
	v_outb text[] := fraud_setting_list('outbound_contexts');
	v_inb text[] := fraud_setting_list('inbound_contexts');
	v_rules boolean;
	v_windows boolean;
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
	SELECT count(*) > 0, coalesce(bool_or(kind NOT IN ('hotlist', 'new_country', 'out_of_hours')), false)
	INTO v_rules, v_windows
	FROM fraud_rule
	WHERE enabled AND kind NOT IN ('allowance', 'endpoint_unreachable', 'endpoint_recovered');
	EXECUTE format($q$
	CREATE TEMP TABLE fraud_att ON COMMIT DROP AS
	WITH legs AS (
		SELECT b.node, b.linkedid, b.dst, b.dcontext, b.tenant, b.src, b.channel, b.dstchannel, b.calldate,
		       b."end", b.billsec, b.duration, b.disposition, b.sell_cost, b.dst_e164, b.src_e164,
		       true AS in_batch
		FROM cdr_batch b
		UNION ALL
		SELECT l.node, l.linkedid, l.dst, l.dcontext, l.tenant, l.src, l.channel, l.dstchannel, l.calldate,
		       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164,
		       false
		FROM %s
		WHERE $1::timestamptz IS NOT NULL AND l.calldate >= $1 - $3 AND l.calldate <= $2 + $4
		  AND NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = l.node AND b.uniqueid = l.uniqueid
				  AND b.calldate = l.calldate AND b.sequence IS NOT DISTINCT FROM l.sequence
				  AND b.channel = l.channel AND b.lastapp = l.lastapp)
	), d AS (
		SELECT x.*, fraud_dir(x.dcontext, $5, $6) AS dir FROM legs x
	), g AS (
		SELECT d.node, d.linkedid, d.dst, d.dir,
		       max(coalesce(d.tenant, '')) AS tenant,
		       min(d.src) AS src,
		       max(CASE WHEN d.dir = 'out' THEN fraud_device(nullif(d.dstchannel, ''))
				ELSE fraud_device(d.channel) END) AS trunk,
		       min(d.calldate) AS start, max(d."end") AS "end",
		       max(d.billsec) AS billsec, max(d.duration) AS duration,
		       bool_or(d.disposition = 'ANSWERED') AS answered,
		       round(sum(d.sell_cost::numeric) / 1000000, 6) AS cost,
		       bool_or(d.in_batch) AS in_batch,
		       coalesce(fraud_e164(max(d.dst_e164)), fraud_e164(d.dst)) AS dst_e164,
		       coalesce(fraud_e164(max(d.src_e164)), fraud_e164(min(d.src))) AS src_e164
		FROM d WHERE d.dir IS NOT NULL
		GROUP BY d.node, d.linkedid, d.dst, d.dir
	)
	SELECT g.*, c.prefix AS cc, coalesce(c.iso, CASE WHEN g.dst_e164 IS NOT NULL THEN 'unknown' END) AS country,
	       CASE WHEN coalesce(g.dst_e164, g.dst) ~ '^\+?[0-9]{1,30}$'
		    THEN ltrim(coalesce(g.dst_e164, g.dst), '+')::numeric END AS dst_num
	FROM g LEFT JOIN LATERAL (
		SELECT cc.prefix, cc.iso FROM country_code cc
		WHERE g.dst_e164 LIKE '+%%'
		  AND cc.prefix IN (substr(g.dst_e164, 2, 1), substr(g.dst_e164, 2, 2), substr(g.dst_e164, 2, 3),
				    substr(g.dst_e164, 2, 4))
		ORDER BY length(cc.prefix) DESC LIMIT 1) c ON true
	$q$, CASE WHEN v_windows THEN 'cdr l'
		  -- one index probe (cdr_linkedid_idx) per conversation of the
		  -- batch, whatever the planner believes about cdr's size (OFFSET
		  -- 0 keeps the calldate range out of the probe)
		  ELSE '(SELECT DISTINCT b.node, b.linkedid FROM cdr_batch b) k
			CROSS JOIN LATERAL (SELECT * FROM cdr l WHERE l.linkedid = k.linkedid AND l.node = k.node OFFSET 0) l' END)
	USING v_lo, v_hi, v_back, v_fwd, v_outb, v_inb;
	IF v_rules THEN
		CREATE INDEX ON fraud_att (tenant, start);
		ANALYZE fraud_att;
	END IF;
END $$;

-- ------------------------------------------------------------ endpoint state

-- Same rows and hits as 0008's loop, which for each state change (in seq
-- order) read the endpoint's latest history row by (eventtime, seq) and
-- its latest row with a known reachability, then inserted the change.  The
-- latest rows are now read once per endpoint and then followed in memory:
-- a change becomes the latest row when no row is later by (eventtime, seq),
-- exactly as an insert did for the next lookup (eventtimes are not always
-- in seq order, so this is checked, not assumed).  down_since is computed
-- after the insert over the rows with a smaller seq: the same rows the
-- loop saw.
CREATE OR REPLACE FUNCTION fraud_state_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	e record;
	ru fraud_rule;
	rr fraud_rule;
	k_kind text;
	k_endpoint text;
	k_detail text;
	t_state text;           -- the latest row of the endpoint
	t_time timestamptz;
	t_seq bigint;
	r_val boolean;          -- the latest row with a known reachability
	r_time timestamptz;
	r_seq bigint;
	a_seq bigint[] := '{}';
	a_kind text[] := '{}';
	a_endpoint text[] := '{}';
	a_detail text[] := '{}';
	a_state text[] := '{}';
	a_reach boolean[] := '{}';
	a_prev text[] := '{}';
	a_known boolean[] := '{}';
	a_time timestamptz[] := '{}';
	a_fields jsonb[] := '{}';
	n integer := 0;
BEGIN
	SELECT * INTO ru FROM fraud_rule WHERE kind = 'endpoint_unreachable' AND enabled ORDER BY name LIMIT 1;
	SELECT * INTO rr FROM fraud_rule WHERE kind = 'endpoint_recovered' AND enabled ORDER BY name LIMIT 1;
	FOR e IN
		WITH ev AS (
			SELECT a.node, a.eventtime, a.seq, a.fields, a.event,
			       CASE a.event WHEN 'PeerStatus' THEN 'peer' WHEN 'ContactStatus' THEN 'contact'
				    WHEN 'Registry' THEN 'registry' ELSE 'device' END AS kind,
			       CASE a.event WHEN 'PeerStatus' THEN a.fields->>'Peer'
				    WHEN 'ContactStatus' THEN coalesce('PJSIP/' || (a.fields->>'EndpointName'), a.fields->>'AOR')
				    WHEN 'Registry' THEN coalesce(a.fields->>'ChannelType', '') || '/' ||
					 coalesce(a.fields->>'Username' || '@', '') || coalesce(a.fields->>'Domain', '')
				    ELSE a.fields->>'Device' END AS endpoint,
			       CASE a.event WHEN 'ContactStatus' THEN coalesce(a.fields->>'URI', '') ELSE '' END AS detail,
			       CASE a.event WHEN 'PeerStatus' THEN a.fields->>'PeerStatus'
				    WHEN 'ContactStatus' THEN a.fields->>'ContactStatus'
				    WHEN 'Registry' THEN a.fields->>'Status' ELSE a.fields->>'State' END AS state
			FROM ami_event a
			WHERE a.node = p_node AND a.seq > p_seq_lo AND a.seq <= p_seq_hi
			  AND a.event IN ('PeerStatus', 'ContactStatus', 'Registry', 'DeviceStateChange')
		), ch AS (
			SELECT ev.*, lag(ev.state) OVER (PARTITION BY ev.kind, ev.endpoint, ev.detail ORDER BY ev.seq) AS batch_prev
			FROM ev WHERE ev.endpoint IS NOT NULL AND ev.state IS NOT NULL
		), c AS (
			SELECT ch.*,
			       CASE ch.kind
				    WHEN 'peer' THEN CASE WHEN ch.state IN ('Reachable', 'Registered', 'Lagged') THEN true
							  WHEN ch.state IN ('Unreachable', 'Unregistered', 'Rejected') THEN false END
				    WHEN 'contact' THEN CASE WHEN ch.state IN ('Reachable', 'Created', 'Updated', 'NonQualified') THEN true
							     WHEN ch.state IN ('Unreachable', 'Removed') THEN false END
				    WHEN 'registry' THEN CASE WHEN ch.state = 'Registered' THEN true
							      WHEN ch.state IN ('Rejected', 'Failed', 'Unregistered', 'Timeout',
										'No Authentication') THEN false END
				    ELSE CASE WHEN ch.state = 'UNAVAILABLE' THEN false
					      WHEN ch.state IN ('UNKNOWN', 'INVALID') THEN NULL ELSE true END
			       END AS reachable,
			       row_number() OVER (PARTITION BY ch.kind, ch.endpoint, ch.detail ORDER BY ch.seq) AS rn
			FROM ch WHERE ch.batch_prev IS DISTINCT FROM ch.state
		)
		-- the endpoint's latest rows, probed at its first change only
		SELECT c.seq, c.kind, c.endpoint, c.detail, c.state, c.reachable, c.eventtime, c.fields,
		       t.state AS t_state, t.eventtime AS t_time, t.seq AS t_seq,
		       r.reachable AS r_val, r.eventtime AS r_time, r.seq AS r_seq
		FROM c
		LEFT JOIN LATERAL (SELECT h.state, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND h.node = c.node AND h.kind = c.kind AND h.endpoint = c.endpoint
				     AND h.detail = c.detail
				   ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1) t ON true
		LEFT JOIN LATERAL (SELECT h.reachable, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND h.node = c.node AND h.kind = c.kind AND h.endpoint = c.endpoint
				     AND h.detail = c.detail AND h.reachable IS NOT NULL
				   ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1) r ON true
		ORDER BY c.kind, c.endpoint, c.detail, c.seq
	LOOP
		IF n = 0 OR e.kind <> k_kind OR e.endpoint <> k_endpoint OR e.detail <> k_detail THEN
			k_kind := e.kind;
			k_endpoint := e.endpoint;
			k_detail := e.detail;
			t_state := e.t_state;
			t_time := e.t_time;
			t_seq := e.t_seq;
			r_val := e.r_val;
			r_time := e.r_time;
			r_seq := e.r_seq;
		END IF;
		n := n + 1;
		IF t_state IS NOT DISTINCT FROM e.state THEN
			CONTINUE;
		END IF;
		a_seq := a_seq || e.seq;
		a_kind := a_kind || e.kind;
		a_endpoint := a_endpoint || e.endpoint;
		a_detail := a_detail || e.detail;
		a_state := a_state || e.state;
		a_reach := a_reach || e.reachable;
		a_prev := a_prev || t_state;
		a_known := a_known || r_val;
		a_time := a_time || e.eventtime;
		a_fields := a_fields || e.fields;
		-- the inserted row is the latest unless an existing one is later
		IF t_time IS NULL OR e.eventtime > t_time OR (e.eventtime = t_time AND e.seq > t_seq) THEN
			t_state := e.state;
			t_time := e.eventtime;
			t_seq := e.seq;
		END IF;
		IF e.reachable IS NOT NULL
		   AND (r_time IS NULL OR e.eventtime > r_time OR (e.eventtime = r_time AND e.seq > r_seq)) THEN
			r_val := e.reachable;
			r_time := e.eventtime;
			r_seq := e.seq;
		END IF;
	END LOOP;
	IF cardinality(a_seq) = 0 THEN
		RETURN;
	END IF;
	INSERT INTO endpoint_state_history (node, kind, endpoint, detail, state, reachable, prev_state, eventtime, seq, fields)
	SELECT p_node, x.kind, x.endpoint, x.detail, x.state, x.reach, x.prev, x.t, x.seq, x.fields
	FROM unnest(a_seq, a_kind, a_endpoint, a_detail, a_state, a_reach, a_prev, a_time, a_fields)
	     AS x(seq, kind, endpoint, detail, state, reach, prev, t, fields)
	ORDER BY x.seq;
	IF ru.name IS NULL AND rr.name IS NULL THEN
		RETURN;
	END IF;
	-- Local channels are dialplan, not endpoints: history only
	INSERT INTO fraud_hit
	SELECT CASE WHEN x.reach = false THEN ru.name ELSE rr.name END, '',
	       x.endpoint || CASE WHEN x.detail <> '' THEN ' ' || x.detail ELSE '' END,
	       x.t, x.t, ARRAY[p_node || ':' || x.seq],
	       CASE WHEN x.reach = false
		    THEN jsonb_build_object('source', x.kind, 'state', x.state, 'previous', x.prev, 'node', p_node)
		    ELSE jsonb_build_object('source', x.kind, 'state', x.state, 'previous', x.prev, 'node', p_node,
			'down_since', (SELECT min(h.eventtime) FROM endpoint_state_history h
				       WHERE h.node = p_node AND h.kind = x.kind AND h.endpoint = x.endpoint
					 AND h.detail = x.detail AND h.seq < x.seq AND h.reachable = false
					 AND h.eventtime >= coalesce((SELECT max(h2.eventtime) FROM endpoint_state_history h2
							WHERE h2.node = p_node AND h2.kind = x.kind AND h2.endpoint = x.endpoint
							  AND h2.detail = x.detail AND h2.seq < x.seq AND h2.reachable),
							'-infinity'))) END
	FROM unnest(a_seq, a_kind, a_endpoint, a_detail, a_state, a_reach, a_prev, a_known, a_time)
	     AS x(seq, kind, endpoint, detail, state, reach, prev, known, t)
	WHERE x.endpoint NOT LIKE 'Local/%'
	  AND ((x.reach = false AND x.known IS DISTINCT FROM false AND ru.name IS NOT NULL
		AND coalesce(ru.params->'sources', '["peer", "contact", "registry", "device"]') ? x.kind)
	       OR (x.reach AND x.known = false AND rr.name IS NOT NULL
		   AND coalesce(rr.params->'sources', '["peer", "contact", "registry", "device"]') ? x.kind))
	ORDER BY x.seq;
END $$;

-- ------------------------------------------------------------ QoS

-- As in 0005.  The original joined every qos_leg row of the node with
-- every call of the list through "linkedid = ANY(linkedids)", which no
-- index serves: with the tables not analyzed yet (a fresh or bulk load)
-- that was a nested loop of qos_leg x calls, seconds per batch.  Now the
-- (call_id, linkedid) pairs of the listed calls are built first and joined
-- to qos_leg on (node, linkedid), its index.  The node is carried by the
-- pairs rather than written as a constant filter on qos_leg, so a table
-- without statistics is not mistaken for a one-row table.
CREATE OR REPLACE FUNCTION cdrflow_qos_update_calls(p_node text, p_call_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_node text[];
	v_call text[];
	v_lk text[];
BEGIN
	SELECT array_agg(c.node), array_agg(c.call_id), array_agg(lk.l)
	INTO v_node, v_call, v_lk
	FROM call c CROSS JOIN LATERAL unnest(c.linkedids) AS lk(l)
	WHERE c.node = p_node AND c.call_id IN (SELECT unnest(p_call_ids));
	IF v_call IS NULL THEN
		RETURN;
	END IF;
	UPDATE qos_leg q SET call_id = x.c
	FROM unnest(v_node, v_call, v_lk) AS x(node, c, l)
	WHERE q.node = x.node AND q.linkedid = x.l AND q.call_id IS DISTINCT FROM x.c;
	UPDATE call c SET worst_mos = w.mos, worst_mos_leg = w.leg
	FROM (SELECT DISTINCT ON (x.c) x.c AS call_id, q.mos, q.uniqueid || '/' || q.direction AS leg
	      FROM unnest(v_node, v_call, v_lk) AS x(node, c, l)
	      JOIN qos_leg q ON q.node = x.node AND q.linkedid = x.l
	      WHERE q.mos IS NOT NULL
	      ORDER BY x.c, q.mos, q.uniqueid, q.direction) w
	WHERE c.node = p_node AND c.call_id = w.call_id
	  AND (c.worst_mos IS DISTINCT FROM w.mos OR c.worst_mos_leg IS DISTINCT FROM w.leg);
END $$;

-- ------------------------------------------------------------ batch events

-- Every step reads "its" events of the batch (node, seq range, a list of
-- event names) and used ami_event_node_seq_idx for that: each read fetched
-- every event of the batch (all 100,000 of a full batch) to keep a few.
-- The queue steps get a partial index each holding only their events (the
-- lists are the steps' own, so the planner proves the predicates): a few
-- hundred entries, where the two reads cost 0.4 s per 800,000 events.
-- Not for the endpoint-state events: DeviceStateChange is a fifth of all
-- events, so the index costs every load (with or without analytics) more
-- at insert (+10 % on ami_event) than it saves fraud_state_step
-- (measured: nothing).  Not for RTCPSent/RTCPReceived: cdrflow_qos_step sums
-- doubles (RTT, jitter) in whatever order the scan returns the rows, so a
-- different plan changes the last bits of rtt_sum_s and what derives from
-- it (0.002 vs 0.0019999999999999996).  0005 already had that property
-- (its own results differ in those bits between a bitmap and an index
-- scan); this migration leaves that read as it is.
CREATE INDEX ami_event_queue_ev_idx ON ami_event (node, seq)
	WHERE event IN ('QueueCallerJoin', 'QueueCallerLeave', 'QueueCallerAbandon', 'AgentCalled', 'AgentConnect',
			'AgentComplete', 'AgentRingNoAnswer');
CREATE INDEX ami_event_member_ev_idx ON ami_event (node, seq)
	WHERE event IN ('QueueMemberAdded', 'QueueMemberRemoved', 'QueueMemberPause', 'QueueMemberPaused');

-- 0022: the analytics steps Citus can push down (issue 13), the same rows on
-- one server.  The whole current body of every function changed is here.
--
-- On Citus a batch's analytics run on the coordinator against distributed
-- tables; what Citus cannot plan was rewritten into shapes it can, each one
-- plain SQL that PostgreSQL runs as before:
--   * the session's tables (cdr_batch, queue_ev, fraud_att) are never
--     joined row by row with a distributed table: the distributed rows
--     needed are read first into a session table (fraud_hist,
--     queue_ev_call), by the batch's nodes and keys, then joined locally;
--   * LATERAL ... LIMIT 1 probes name the node (node = p_node), so one
--     shard answers them (fraud_state_step);
--   * no subquery inside INSERT ... VALUES or UPDATE ... SET of a
--     distributed table: computed into a variable first (fraud_raise);
--   * SQL-language functions with parameters that read tables are
--     PL/pgSQL (Citus cannot plan a parameterised SQL function's query);
--     #variable_conflict use_column keeps SQL's name resolution.

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
	v_nodes text[];
	v_linkedids text[];
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
	-- the stored legs the rules may look at, read first on their own: on
	-- Citus a distributed table is not joined with the session's cdr_batch
	IF to_regclass('pg_temp.fraud_hist') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_hist;
	END IF;
	SELECT array_agg(DISTINCT node), array_agg(DISTINCT linkedid) INTO v_nodes, v_linkedids FROM cdr_batch;
	EXECUTE format($q$
	CREATE TEMP TABLE fraud_hist ON COMMIT DROP AS
	SELECT l.node, l.linkedid, l.dst, l.dcontext, l.tenant, l.src, l.channel, l.dstchannel, l.calldate,
	       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164,
	       l.uniqueid, l.sequence, l.lastapp
	FROM cdr l
	WHERE $1::timestamptz IS NOT NULL AND l.calldate >= $1 - $3 AND l.calldate <= $2 + $4 %s
	$q$, CASE WHEN v_windows THEN ''
		  -- without a sliding window: only the batch's conversations
		  ELSE 'AND l.node = ANY ($5) AND l.linkedid = ANY ($6)' END)
	USING v_lo, v_hi, v_back, v_fwd, v_nodes, v_linkedids;
	IF NOT v_windows THEN
		DELETE FROM fraud_hist h WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = h.node
							   AND b.linkedid = h.linkedid);
	END IF;
	EXECUTE $q$
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
		FROM fraud_hist l
		WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = l.node AND b.uniqueid = l.uniqueid
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
		WHERE g.dst_e164 LIKE '+%'
		  AND cc.prefix IN (substr(g.dst_e164, 2, 1), substr(g.dst_e164, 2, 2), substr(g.dst_e164, 2, 3),
				    substr(g.dst_e164, 2, 4))
		ORDER BY length(cc.prefix) DESC LIMIT 1) c ON true
	$q$
	USING v_lo, v_hi, v_back, v_fwd, v_outb, v_inb;
	DROP TABLE pg_temp.fraud_hist;
	IF v_rules THEN
		CREATE INDEX ON fraud_att (tenant, start);
		ANALYZE fraud_att;
	END IF;
END $$;
CREATE OR REPLACE FUNCTION fraud_tenant_limit_value(p_tenant text, p_what text) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN (
	SELECT coalesce(
		(SELECT CASE p_what WHEN 'allowance_minutes' THEN l.allowance_minutes
				    WHEN 'max_concurrent' THEN l.max_concurrent
				    WHEN 'max_cps' THEN l.max_cps END
		 FROM fraud_tenant_limit l WHERE l.tenant IN (p_tenant, '*')
		 ORDER BY l.tenant = '*' LIMIT 1),
		CASE WHEN p_what = 'allowance_minutes'
		     THEN (SELECT a.minutes FROM tenant_allowance a WHERE a.tenant = p_tenant AND a.minutes > 0) END));
END $$;

CREATE OR REPLACE FUNCTION fraud_setting_list(p_name text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN (
	SELECT coalesce((SELECT array_agg(x) FROM fraud_setting s, jsonb_array_elements_text(s.value) x
			 WHERE s.name = p_name AND jsonb_typeof(s.value) = 'array'), '{}'));
END $$;

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
		-- the endpoint's latest rows, probed at its first change only (every
		-- table named with node = p_node: on Citus one shard answers it all)
		SELECT c.seq, c.kind, c.endpoint, c.detail, c.state, c.reachable, c.eventtime, c.fields,
		       t.state AS t_state, t.eventtime AS t_time, t.seq AS t_seq,
		       r.reachable AS r_val, r.eventtime AS r_time, r.seq AS r_seq
		FROM c
		LEFT JOIN LATERAL (SELECT h.state, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND h.node = p_node AND h.kind = c.kind AND h.endpoint = c.endpoint
				     AND h.detail = c.detail
				   ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1) t ON true
		LEFT JOIN LATERAL (SELECT h.reachable, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND h.node = p_node AND h.kind = c.kind AND h.endpoint = c.endpoint
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
CREATE OR REPLACE FUNCTION fraud_raise() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	h record;
	a alert;
	n integer := 0;
	ev text[];
BEGIN
	FOR h IN
		SELECT x.*, r.kind, r.severity, r.snooze FROM fraud_hit x JOIN fraud_rule r ON r.name = x.rule
		ORDER BY x.window_start, x.rule, x.tenant, x.subject
	LOOP
		SELECT * INTO a FROM alert
		WHERE rule = h.rule AND tenant = h.tenant AND subject = h.subject
		ORDER BY window_end DESC, id DESC LIMIT 1
		FOR UPDATE;
		IF FOUND AND h.window_start <= a.window_end + h.snooze THEN
			IF h.evidence <@ a.evidence AND h.window_start >= a.window_start AND h.window_end <= a.window_end THEN
				CONTINUE;
			END IF;
			-- the evidence is computed first: Citus takes no subquery in the
			-- UPDATE or INSERT of a distributed table
			SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO ev
			FROM (SELECT DISTINCT x FROM unnest(a.evidence || h.evidence) x ORDER BY x LIMIT 1000) s;
			UPDATE alert SET
				updated_at = now(),
				window_start = least(window_start, h.window_start),
				window_end = greatest(window_end, h.window_end),
				evidence = ev,
				hits = hits + 1,
				details = h.details || jsonb_build_object('folded', true)
			WHERE tenant = a.tenant AND id = a.id;
		ELSE
			SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO ev
			FROM (SELECT DISTINCT x FROM unnest(h.evidence) x ORDER BY x LIMIT 1000) s;
			INSERT INTO alert (rule, kind, tenant, severity, subject, window_start, window_end, evidence, details)
			VALUES (h.rule, h.kind, h.tenant, h.severity, h.subject, h.window_start, h.window_end, ev, h.details);
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;
CREATE OR REPLACE FUNCTION cdrflow_qos_recompute(p_node text, p_uniqueids text[]) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
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
	WHERE q.node = m.node AND q.uniqueid = m.uniqueid AND q.direction = m.direction;
END $$;

CREATE OR REPLACE FUNCTION cdrflow_queue_apply(p_source text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_nodes text[];
	v_callers text[];
BEGIN
	INSERT INTO queue_call (source, node, queue, caller_uniqueid, linkedid, caller_num, join_time, join_position)
	SELECT p_source, node, queue, caller_uniqueid, linkedid, caller_num, at, pos
	FROM queue_ev WHERE kind = 'join'
	ON CONFLICT (source, node, caller_uniqueid, queue, join_time) DO NOTHING;

	-- the visit each event belongs to
	CREATE TEMP TABLE IF NOT EXISTS queue_ev_visit (ev_seq bigint, kind text, visit bigint) ON COMMIT DROP;
	TRUNCATE queue_ev_visit;
	-- the visits of the events' callers are read first (on Citus a
	-- distributed table is not probed row by row from a session's table)
	CREATE TEMP TABLE IF NOT EXISTS queue_ev_call (id bigint, node text, caller_uniqueid text, queue text,
		join_time timestamptz, agent_uniqueid text) ON COMMIT DROP;
	TRUNCATE queue_ev_call;
	SELECT array_agg(DISTINCT node), array_agg(DISTINCT caller_uniqueid) INTO v_nodes, v_callers
	FROM queue_ev WHERE kind <> 'join';
	INSERT INTO queue_ev_call
	SELECT c.id, c.node, c.caller_uniqueid, c.queue, c.join_time FROM queue_call c
	WHERE c.source = p_source AND c.node = ANY (v_nodes) AND c.caller_uniqueid = ANY (v_callers);
	INSERT INTO queue_ev_visit
	SELECT e.seq, e.kind, v.id
	FROM queue_ev e CROSS JOIN LATERAL (
		SELECT id FROM queue_ev_call c
		WHERE c.node = e.node AND c.caller_uniqueid = e.caller_uniqueid
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
	TRUNCATE queue_ev_call;
	INSERT INTO queue_ev_call (id, node, agent_uniqueid)
	SELECT c.id, c.node, c.agent_uniqueid FROM queue_call c
	WHERE c.node = ANY (v_nodes) AND c.id = ANY (ARRAY(SELECT visit FROM queue_ev_visit));
	UPDATE queue_ev e SET agent_uniqueid = c.agent_uniqueid
	FROM queue_ev_visit v JOIN queue_ev_call c ON c.id = v.visit
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

-- read by cdrflow-report and cdrflow-query (0015): PL/pgSQL for Citus
CREATE OR REPLACE FUNCTION input_caveats(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (node text, ami_name text, affects_rows boolean, period_start timestamptz, period_end timestamptz,
	       caveat text, restore text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT c.node, c.ami_name, c.affects_rows, min(c.period_start), max(c.period_end), c.caveat, c.restore
	FROM input_caveat c
	WHERE c.period_start < p_to AND c.period_end >= p_from
	GROUP BY c.node, c.input, c.ami_name, c.affects_rows, c.caveat, c.restore
	ORDER BY c.node, c.input;
END $$;


-- queue and agent statistics (0005), read by the queue-service and agent-performance
-- reports: PL/pgSQL for Citus (RETURN QUERY does not cast as a SQL function's
-- result does: the numeric ratios are cast to the declared double precision)
CREATE OR REPLACE FUNCTION cdrflow_queue_stats(p_from timestamptz, p_to timestamptz, p_interval interval,
				    p_short_abandon_s integer DEFAULT 0, p_sl_threshold_s integer DEFAULT 20,
				    p_source text DEFAULT 'ami', p_node text DEFAULT NULL)
RETURNS TABLE (node text, queue text, bucket timestamptz, entered bigint, offered bigint, answered bigint,
	       abandoned bigint, short_abandoned bigint, timeouts bigint, exits_other bigint, waiting bigint,
	       answered_within_t bigint, abandoned_within_t bigint, abandoned_after_t bigint,
	       sl_pct double precision, sl1_pct double precision, sl2_pct double precision, sl3_pct double precision,
	       abandon_rate_pct double precision, asa_s double precision, avg_wait_s double precision,
	       max_wait_s integer, avg_abandon_wait_s double precision, aht_s double precision)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
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
	       (100.0 * a.ans_t / nullif(a.answered + a.ab_after, 0))::double precision,
	       (100.0 * (a.ans_t + a.ab_in) / nullif(a.answered + a.abandoned, 0))::double precision,
	       (100.0 * a.ans_t / nullif(a.answered, 0))::double precision,
	       (100.0 * a.ans_t / nullif(a.answered + a.abandoned, 0))::double precision,
	       (100.0 * a.abandoned / nullif(a.offered, 0))::double precision,
	       a.asa::double precision, a.avg_wait::double precision, a.max_wait, a.avg_ab_wait::double precision,
	       a.aht::double precision
	FROM a ORDER BY a.node, a.queue, a.b;
END $$;

CREATE OR REPLACE FUNCTION cdrflow_agent_stats(p_from timestamptz, p_to timestamptz, p_interval interval,
				    p_source text DEFAULT 'ami', p_node text DEFAULT NULL)
RETURNS TABLE (node text, agent text, bucket timestamptz, attempts bigint, answered bigint, talk_s bigint,
	       avg_talk_s double precision, ring_no_answer bigint, ring_canceled bigint,
	       available_s double precision, occupancy_pct double precision)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
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
			 FROM unnest(av.r * tstzmultirange(tstzrange(s.b, s.b + p_interval))) x), 0) END::double precision
	FROM s LEFT JOIN known k ON k.node = s.node AND k.agent = s.agent
	       LEFT JOIN avail av ON av.node = s.node AND av.agent = s.agent
	ORDER BY s.node, s.agent, s.b;
END $$;


-- 0054: a batch's reads of what is stored already are probes by key, so
-- their cost follows the batch, not the history loaded before it (issue 15).
--
-- Measured with pg_stat_statements and auto_explain on bench-etl's stream
-- (1.08 M and 2.15 M events, batches of 100,000 events):
--
-- 1. cdrflow-etl drops from each batch the legs stored already (by
--    cdr_leg_once) and the calls stored already (same node, call_id and
--    start) before writing it.  Both statements joined the batch table with
--    the whole stored table: a hash join over every row of cdr_leg_once and
--    a merge join over every row of call, sorted, once per batch, with or
--    without analytics.  The legs' join took 3.5 ms a batch at 1 M events
--    and 6.2 ms at 5 M (growing with every batch loaded); the probes take
--    2.8 to 3.8 ms at either size.  The calls' statement was already cheap
--    in a load (1 to 4 ms; 15 ms when the planner merge-joined all of call).  The session's batch tables have no statistics,
--    so the planner does not see that a batch is a few thousand rows; the
--    two statements now run in functions that plan them without hash or
--    merge joins: each batch row probes the primary key of cdr_leg_once,
--    or the call_id index of the month of its start.  Same rows deleted,
--    same "count first" returned.  They are planned at every call (EXECUTE),
--    as the statements were, so the plan follows the sizes of the moment (a
--    plan cached while cdr_leg_once was empty could scan it for every batch
--    row).  (Bounding the stored side with
--    "= ANY (batch's keys)" instead gave a bitmap scan on node alone with
--    the keys as a filter: worse.)
--
-- 2. cdrflow_qos_step read every event of the batch (node, seq range, the
--    node_seq index) to keep its RTCPSent/RTCPReceived ones, 2 % of them.
--    0011 gave the queue steps a partial index each and not this step,
--    because the step's RTT sum depended on the order the scan returned
--    rows; 0053 adds them in event order, so the plan no longer changes the
--    result, and the step gets its partial index like the queue steps (an
--    index entry for 2 % of the event rows).

CREATE INDEX ami_event_rtcp_idx ON ami_event (node, seq) WHERE event IN ('RTCPSent', 'RTCPReceived');

-- The legs of cdr_batch stored already (cdr_leg_once, 0014) are deleted
-- from it; returns 'count first_sequence' of those deleted.
CREATE OR REPLACE FUNCTION cdrflow_drop_stored_legs() RETURNS text
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
	v text;
BEGIN
	EXECUTE 'WITH d AS (DELETE FROM cdr_batch b USING cdr_leg_once k WHERE k.node = b.node
		 AND k.sequence = b.sequence AND NOT b.imported RETURNING b.sequence)
		 SELECT count(*) || '' '' || coalesce(min(sequence), 0) FROM d' INTO v;
	RETURN v;
END $$;

-- The calls of call_batch stored already (same node, call_id and start) are
-- deleted from it; returns 'count first_call_id' of those deleted.
CREATE OR REPLACE FUNCTION cdrflow_drop_stored_calls() RETURNS text
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
	v text;
BEGIN
	EXECUTE 'WITH d AS (DELETE FROM call_batch b USING call k WHERE k.node = b.node AND
		 k.call_id = b.call_id AND k.start = b.start RETURNING b.call_id)
		 SELECT count(*) || '' '' || coalesce(min(call_id), '''') FROM d' INTO v;
	RETURN v;
END $$;

-- 3. fraud_state_step (0022's body restated; two changes, measured 10 % of
--    its query, 3 to 4 ms a batch): the endpoint's latest history row
--    already tells the latest known reachability when its own is known (a
--    device's is unknown only for UNKNOWN/INVALID), so the second probe of
--    endpoint_state_history runs only when it is not; and the batch's
--    events are grouped and walked in byte order (COLLATE "C") instead of
--    the database's collation.  Groups are the same either way (equal
--    under a deterministic collation is equal bytes), the rows inside a
--    group stay in seq order, and both INSERTs order by seq: the same rows,
--    in the same order, get the same ids.  What remains is the history
--    rows themselves (about 2,400 a batch of 100,000 bench events, 10 us
--    each to insert with their three indexes) and reading the batch's
--    events: DeviceStateChange is half of the stored events, so a partial
--    index would cost the COPY more than it saves (0011).

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
			SELECT ev.*, lag(ev.state) OVER (PARTITION BY ev.kind COLLATE "C", ev.endpoint COLLATE "C",
							     ev.detail COLLATE "C" ORDER BY ev.seq) AS batch_prev
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
			       row_number() OVER (PARTITION BY ch.kind COLLATE "C", ch.endpoint COLLATE "C",
						       ch.detail COLLATE "C" ORDER BY ch.seq) AS rn
			FROM ch WHERE ch.batch_prev IS DISTINCT FROM ch.state
		)
		-- the endpoint's latest rows, probed at its first change only (every
		-- table named with node = p_node: on Citus one shard answers it all);
		-- the latest row with a known reachability is the latest row when
		-- that row's is known, and probed for only when it is not
		SELECT c.seq, c.kind, c.endpoint, c.detail, c.state, c.reachable, c.eventtime, c.fields,
		       t.state AS t_state, t.eventtime AS t_time, t.seq AS t_seq,
		       CASE WHEN t.reachable IS NOT NULL THEN t.reachable ELSE r.reachable END AS r_val,
		       CASE WHEN t.reachable IS NOT NULL THEN t.eventtime ELSE r.eventtime END AS r_time,
		       CASE WHEN t.reachable IS NOT NULL THEN t.seq ELSE r.seq END AS r_seq
		FROM c
		LEFT JOIN LATERAL (SELECT h.state, h.reachable, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND h.node = p_node AND h.kind = c.kind AND h.endpoint = c.endpoint
				     AND h.detail = c.detail
				   ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1) t ON true
		LEFT JOIN LATERAL (SELECT h.reachable, h.eventtime, h.seq FROM endpoint_state_history h
				   WHERE c.rn = 1 AND t.reachable IS NULL AND h.node = p_node AND h.kind = c.kind
				     AND h.endpoint = c.endpoint AND h.detail = c.detail AND h.reachable IS NOT NULL
				   ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1) r ON true
		ORDER BY c.kind COLLATE "C", c.endpoint COLLATE "C", c.detail COLLATE "C", c.seq
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

-- 0062: the endpoint-state events reach fraud_state_step from the loader,
-- not from ami_event.
--
-- DeviceStateChange, PeerStatus, ContactStatus and Registry were kept in
-- ami_event (etl.ami_event_store: analytics) only for this step, which read
-- them back once, took each one's endpoint and state out of its jsonb and
-- dropped the repeats within the batch.  DeviceStateChange alone was 48 %
-- of the stored rows on the bench stream built from the real captures
-- (67,120 of 140,452 at 1.08 M events), each one COPYed, indexed and
-- WAL-logged to be read by one query, and 58 % of those were repeats.
--
-- Now the loader names each event's endpoint and state as it parses it
-- (etl/epstate.h, the one home of that mapping), drops what repeats the
-- endpoint's previous event in the batch, and hands the rest in the
-- session table endpoint_event_batch (seq, eventtime, kind, endpoint,
-- detail, state, fields: the event's headers as ami_event.fields would
-- hold them), naming the batch in the transaction-local setting
-- cdrflow.endpoint_event_batch, as 0048 does for the event scope.  The
-- step reads them into arrays first (a local table is never joined with a
-- distributed one on Citus: the query stays a router query on the node's
-- shard).  From there the body is 0054's, unchanged: the reachability of
-- each state, the probe of the endpoint's latest rows, the walk and both
-- INSERTs; the same rows, in the same order, get the same ids.  Nothing
-- handed for the batch (a batch of a Kamailio source, generated traffic):
-- nothing to do.  etl.ami_event_store: all still keeps these events in
-- ami_event, for the user's own queries.
--
-- The endpoint_state_history index on eventtime (0008) has no reader
-- (endpoint_state_current and this step read the key index): dropped, one
-- index fewer per history row.

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
	v_seq bigint[];         -- the batch's endpoint-state changes (etl/epstate.h)
	v_time timestamptz[];
	v_kind text[];
	v_endpoint text[];
	v_detail text[];
	v_state text[];
	v_fields jsonb[];
BEGIN
	-- handed by the loader (etl/load.c state_tell) for this very batch only
	IF current_setting('cdrflow.endpoint_event_batch', true) IS DISTINCT FROM
	   p_node || ' ' || p_seq_lo || ' ' || p_seq_hi THEN
		RETURN;
	END IF;
	SELECT array_agg(b.seq), array_agg(b.eventtime), array_agg(b.kind), array_agg(b.endpoint),
	       array_agg(b.detail), array_agg(b.state), array_agg(b.fields)
	INTO v_seq, v_time, v_kind, v_endpoint, v_detail, v_state, v_fields
	FROM (SELECT * FROM endpoint_event_batch ORDER BY seq) b;
	IF v_seq IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO ru FROM fraud_rule WHERE kind = 'endpoint_unreachable' AND enabled ORDER BY name LIMIT 1;
	SELECT * INTO rr FROM fraud_rule WHERE kind = 'endpoint_recovered' AND enabled ORDER BY name LIMIT 1;
	FOR e IN
		WITH c AS (
			SELECT x.*,
			       CASE x.kind
				    WHEN 'peer' THEN CASE WHEN x.state IN ('Reachable', 'Registered', 'Lagged') THEN true
							  WHEN x.state IN ('Unreachable', 'Unregistered', 'Rejected') THEN false END
				    WHEN 'contact' THEN CASE WHEN x.state IN ('Reachable', 'Created', 'Updated', 'NonQualified') THEN true
							     WHEN x.state IN ('Unreachable', 'Removed') THEN false END
				    WHEN 'registry' THEN CASE WHEN x.state = 'Registered' THEN true
							      WHEN x.state IN ('Rejected', 'Failed', 'Unregistered', 'Timeout',
										'No Authentication') THEN false END
				    ELSE CASE WHEN x.state = 'UNAVAILABLE' THEN false
					      WHEN x.state IN ('UNKNOWN', 'INVALID') THEN NULL ELSE true END
			       END AS reachable,
			       row_number() OVER (PARTITION BY x.kind COLLATE "C", x.endpoint COLLATE "C",
						       x.detail COLLATE "C" ORDER BY x.seq) AS rn
			FROM unnest(v_seq, v_time, v_kind, v_endpoint, v_detail, v_state, v_fields)
			     AS x(seq, eventtime, kind, endpoint, detail, state, fields)
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

DROP INDEX IF EXISTS endpoint_state_history_time_idx;

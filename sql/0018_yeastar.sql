-- 0018_yeastar.sql - Yeastar PBX events: extension state history and the calls in progress.
--
-- cdrflow-etl loads a Yeastar node's CDRs (30012, S-Series NewCdr) as cdr
-- legs and call rows, and every other Yeastar event as an ami_event row:
-- event YeastarExtensionRegistration (30007), YeastarExtensionCallStatus
-- (30008), YeastarCallStatus (30011), Yeastar<ID> for the rest; fields =
-- the event's msg, uniqueid = linkedid = its call_id when it has one
-- (docs/sources.md).  This step runs with every batch like the others
-- (0004: inside the batch's transaction, so exactly once) and keeps:
--
--  * endpoint_state_history (0008), changes only, endpoint 'Yeastar/<ext>':
--    kind 'extension' from 30008 (Ringing, Busy, Idle; reachable NULL: a
--    call state says nothing about reachability) and kind 'registration'
--    from 30007 (Registered -> reachable, Unregistered -> not; detail = the
--    client kind: Sip, Mobile, Desktop, Web, Pad);
--  * yeastar_live_call: each node's calls in progress as the last 30011
--    described them; a call leaves when every member is BYE or its CDR
--    arrives.
CREATE TABLE yeastar_live_call (
	node     text NOT NULL,
	call_id  text NOT NULL,
	members  jsonb NOT NULL,            -- the 30011 members array, as sent
	since    timestamptz NOT NULL,      -- first 30011 of the call
	updated  timestamptz NOT NULL,      -- last 30011 of the call
	seq      bigint NOT NULL,           -- its record sequence
	PRIMARY KEY (node, call_id)
);

CREATE FUNCTION yeastar_state_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	e record;
	v_prev text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM ami_event a WHERE a.node = p_node AND a.seq > p_seq_lo AND a.seq <= p_seq_hi
			AND a.event LIKE 'Yeastar%') AND NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = p_node
			AND b.channel LIKE 'Yeastar/%') THEN
		RETURN;
	END IF;
	-- extension call status and registration: a row per change
	FOR e IN
		SELECT a.seq, a.eventtime, a.fields,
		       CASE a.event WHEN 'YeastarExtensionCallStatus' THEN 'extension' ELSE 'registration' END AS kind,
		       'Yeastar/' || (a.fields->>'extension') AS endpoint,
		       CASE a.event WHEN 'YeastarExtensionRegistration' THEN coalesce(a.fields->>'kind', '') ELSE '' END AS detail,
		       a.fields->>'status' AS state
		FROM ami_event a
		WHERE a.node = p_node AND a.seq > p_seq_lo AND a.seq <= p_seq_hi
		  AND a.event IN ('YeastarExtensionCallStatus', 'YeastarExtensionRegistration')
		  AND a.fields ? 'extension' AND a.fields ? 'status'
		ORDER BY a.seq
	LOOP
		SELECT h.state INTO v_prev FROM endpoint_state_history h
		WHERE h.node = p_node AND h.kind = e.kind AND h.endpoint = e.endpoint AND h.detail = e.detail
		ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1;
		IF v_prev IS NOT DISTINCT FROM e.state THEN
			CONTINUE;
		END IF;
		INSERT INTO endpoint_state_history (node, kind, endpoint, detail, state, reachable, prev_state, eventtime, seq, fields)
		VALUES (p_node, e.kind, e.endpoint, e.detail, e.state,
			CASE WHEN e.kind = 'registration' THEN
				CASE lower(e.state) WHEN 'registered' THEN true WHEN 'unregistered' THEN false END END,
			v_prev, e.eventtime, e.seq, e.fields);
	END LOOP;
	-- calls in progress: the last 30011 of each call
	FOR e IN
		SELECT DISTINCT ON (a.uniqueid) a.uniqueid AS call_id, a.fields->'members' AS members, a.eventtime, a.seq,
		       NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(a.fields->'members', '[]')) m,
					     jsonb_each(m.value) side
				   WHERE side.value->>'member_status' IS DISTINCT FROM 'BYE') AS over
		FROM ami_event a
		WHERE a.node = p_node AND a.seq > p_seq_lo AND a.seq <= p_seq_hi AND a.event = 'YeastarCallStatus'
		  AND a.uniqueid IS NOT NULL AND jsonb_typeof(a.fields->'members') = 'array'
		ORDER BY a.uniqueid, a.seq DESC
	LOOP
		IF e.over THEN
			DELETE FROM yeastar_live_call WHERE node = p_node AND call_id = e.call_id;
		ELSE
			INSERT INTO yeastar_live_call (node, call_id, members, since, updated, seq)
			VALUES (p_node, e.call_id, e.members, e.eventtime, e.eventtime, e.seq)
			ON CONFLICT (node, call_id) DO UPDATE SET members = excluded.members, updated = excluded.updated,
				seq = excluded.seq WHERE yeastar_live_call.seq < excluded.seq;
		END IF;
	END LOOP;
	-- a call whose CDR arrived is over
	DELETE FROM yeastar_live_call l USING cdr_batch b
	WHERE l.node = p_node AND b.node = p_node AND b.uniqueid = l.call_id;
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('yeastar_state_step', 35);

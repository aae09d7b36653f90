-- 0038_event_scope_once.sql - which tenants may see each event, stated
-- once for both event tables.
--
-- 0020's cdrflow_event_scope() wrote the same visibility query twice, for
-- cel (channel column channame) and ami_event (channel): a fix to one
-- could miss the other.  Here it is one statement, run for each table.
-- The rule (docs/metrics.md, "Tenants and numbers"; tests/t/t2420): an
-- event of a call whose legs have one tenant is that tenant's; of a call
-- shared by several tenants, an event is seen by the tenants whose legs
-- own its channel (by uniqueid or channel name), no one else.
--
-- And bounded (issue 15): the events of a batch's conversations were found
-- by linkedid among *all* the node's events (ami_event has no linkedid
-- index since 0030: it cost every COPY), so the step's cost grew with the
-- history loaded.  Every event of a conversation that gets legs in a batch
-- is either in the batch or belongs to a call that was still open when the
-- batch before it committed; cdrflow-etl now records with each checkpoint
-- the lowest seq such an open call can have (etl_checkpoint.cdr_seq, from
-- the CDR engine's replay position), and the step reads only events from
-- there on: a range of the (node, seq) index as long as the open calls.

ALTER TABLE etl_checkpoint ADD COLUMN cdr_seq bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN etl_checkpoint.cdr_seq IS
	'no event of a call still open at cdr_segno/cdr_offset has a smaller seq (0: unknown)';

DROP FUNCTION cdrflow_event_scope(text, text[]);
CREATE FUNCTION cdrflow_event_scope(p_node text, p_linkedids text[], p_seq_from bigint DEFAULT 0) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
	t record;
BEGIN
	IF p_linkedids IS NULL OR cardinality(p_linkedids) = 0 THEN
		RETURN;
	END IF;
	-- none of these conversations has a leg with a tenant (a warehouse
	-- without tenants, or a batch of none of theirs): every event of them
	-- is nobody's, which is what it already is (an event gets tenants only
	-- from its conversation's tenant legs, and legs are never deleted here)
	IF NOT EXISTS (SELECT 1 FROM cdr l WHERE l.node = p_node AND l.linkedid = ANY (p_linkedids)
		       AND l.tenant IS NOT NULL) THEN
		RETURN;
	END IF;
	FOR t IN SELECT * FROM (VALUES ('cel', 'channame'), ('ami_event', 'channel')) v(tbl, chan) LOOP
		EXECUTE format($q$
		WITH legs AS MATERIALIZED (
			SELECT l.linkedid, l.tenant, l.uniqueid, l.channel, l.dstchannel
			FROM cdr l WHERE l.node = $1 AND l.linkedid = ANY ($2) AND l.tenant IS NOT NULL
		), calls AS (
			SELECT linkedid, array_agg(DISTINCT tenant ORDER BY tenant) AS ts FROM legs GROUP BY linkedid
		), shared AS (
			SELECT l.* FROM legs l JOIN calls c USING (linkedid) WHERE cardinality(c.ts) > 1
		), own AS ( -- of a shared call: (linkedid, uniqueid or channel name) -> tenant
			SELECT l.linkedid, l.uniqueid AS uid, l.channel AS chan, l.tenant FROM shared l
			UNION
			SELECT l.linkedid, NULL, l.dstchannel, l.tenant FROM shared l
			WHERE l.dstchannel <> ''
			  AND NOT EXISTS (SELECT 1 FROM shared o WHERE o.linkedid = l.linkedid AND o.channel = l.dstchannel
					  AND o.tenant <> l.tenant)
		), ev AS (
			SELECT e.seq, e.linkedid, e.uniqueid, e.%2$I AS chan FROM %1$I e
			WHERE e.node = $1 AND e.seq >= $3 AND e.linkedid = ANY ($2)
		), m AS (
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.uid = ev.uniqueid
			UNION
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.chan = ev.chan
		), scope AS (
			SELECT ev.seq, CASE WHEN cardinality(c.ts) = 1 THEN c.ts ELSE x.ts END AS ts
			FROM ev LEFT JOIN calls c ON c.linkedid = ev.linkedid
			LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant) AS ts FROM m GROUP BY seq) x ON x.seq = ev.seq
		)
		UPDATE %1$I e SET tenants = s.ts FROM scope s
		WHERE e.node = $1 AND e.seq >= $3 AND e.linkedid = ANY ($2) AND e.seq = s.seq
		  AND e.tenants IS DISTINCT FROM s.ts
		$q$, t.tbl, t.chan) USING p_node, p_linkedids, coalesce(p_seq_from, 0);
	END LOOP;
END $$;

-- The analytics step: the conversations of the batch's legs and events,
-- their events from the bound the checkpoint before this batch recorded
-- (the checkpoint of this batch is written after the analytics).
CREATE OR REPLACE FUNCTION cdrflow_event_scope_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_legs text[];
	v_events text[];
	v_from bigint;
BEGIN
	SELECT cdr_seq INTO v_from FROM etl_checkpoint WHERE node = p_node;
	SELECT array_agg(DISTINCT linkedid) INTO v_legs FROM cdr_batch WHERE node = p_node AND linkedid IS NOT NULL;
	SELECT array_agg(DISTINCT linkedid) INTO v_events FROM (
		SELECT linkedid FROM cel WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi AND linkedid IS NOT NULL
		UNION ALL
		SELECT linkedid FROM ami_event WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi
		  AND linkedid IS NOT NULL) e;
	PERFORM cdrflow_event_scope(p_node, ARRAY(SELECT DISTINCT x FROM unnest(coalesce(v_legs, '{}') || coalesce(v_events, '{}')) x),
				    least(coalesce(v_from, 0), p_seq_lo + 1));
END $$;

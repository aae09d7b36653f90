-- 0042_event_scope_whole.sql - event rows are written with their tenants;
-- the step rewrites only the conversations that span batches.
--
-- Issue 15: after every batch, cdrflow_event_scope() read every event of
-- the batch's conversations and wrote tenants onto each of them: a second
-- write of every event row of every tenant's call (1.8 s of the 3.6 s the
-- step took per million events, the rest reading them back).  cdrflow-etl
-- now applies the rule of 0038 to the legs and events of the batch in hand
-- (etl/evscope.c) and writes each row with its tenants; it also lists, in
-- the session's temp table event_scope_whole, the conversations whose
-- every stored row is in the batch (none from the checkpoint's cdr_seq
-- bound on in an earlier one).  The step leaves those alone when all of
-- their tenant legs are the batch's own; every other conversation (events
-- in earlier batches, legs stored before, imported legs, other sources) is
-- decided here as before, and this function stays the authority: the
-- loader's answer only spares it work that would change nothing.
--
-- The tenants of an event are ordered bytewise (COLLATE "C"), the order
-- the loader writes, whatever the database's collation: the same set is
-- always the same array.

CREATE OR REPLACE FUNCTION cdrflow_event_scope(p_node text, p_linkedids text[], p_seq_from bigint DEFAULT 0) RETURNS void
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
			SELECT linkedid, array_agg(DISTINCT tenant COLLATE "C" ORDER BY tenant COLLATE "C") AS ts FROM legs GROUP BY linkedid
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
			LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant COLLATE "C") AS ts FROM m GROUP BY seq) x
			ON x.seq = ev.seq
		)
		UPDATE %1$I e SET tenants = s.ts FROM scope s
		WHERE e.node = $1 AND e.seq >= $3 AND e.linkedid = ANY ($2) AND e.seq = s.seq
		  AND e.tenants IS DISTINCT FROM s.ts
		$q$, t.tbl, t.chan) USING p_node, p_linkedids, coalesce(p_seq_from, 0);
	END LOOP;
END $$;

-- The analytics step: the conversations of the batch's legs and events but
-- those the loader wrote whole (their tenant legs all in this batch), their
-- events from the bound the checkpoint before this batch recorded (the
-- checkpoint of this batch is written after the analytics).
CREATE OR REPLACE FUNCTION cdrflow_event_scope_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_legs text[];
	v_events text[];
	v_whole text[] := '{}';
	v_from bigint;
BEGIN
	SELECT cdr_seq INTO v_from FROM etl_checkpoint WHERE node = p_node;
	SELECT array_agg(DISTINCT linkedid) INTO v_legs FROM cdr_batch WHERE node = p_node AND linkedid IS NOT NULL;
	SELECT array_agg(DISTINCT linkedid) INTO v_events FROM (
		SELECT linkedid FROM cel WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi AND linkedid IS NOT NULL
		UNION ALL
		SELECT linkedid FROM ami_event WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi
		  AND linkedid IS NOT NULL) e;
	IF to_regclass('pg_temp.event_scope_whole') IS NOT NULL THEN
		-- whole, and no tenant leg of it but the batch's (none stored
		-- before, none dropped as stored already, none imported)
		WITH w AS (SELECT DISTINCT linkedid FROM pg_temp.event_scope_whole),
		b AS (SELECT linkedid, count(*) AS n FROM cdr_batch
		      WHERE node = p_node AND tenant IS NOT NULL AND linkedid IN (SELECT linkedid FROM w) GROUP BY linkedid),
		a AS (SELECT l.linkedid, count(*) AS n FROM cdr l
		      WHERE l.node = p_node AND l.tenant IS NOT NULL AND l.linkedid = ANY (ARRAY(SELECT linkedid FROM w))
		      GROUP BY l.linkedid)
		SELECT coalesce(array_agg(b.linkedid), '{}') INTO v_whole FROM b JOIN a USING (linkedid) WHERE a.n = b.n;
	END IF;
	PERFORM cdrflow_event_scope(p_node,
		ARRAY(SELECT DISTINCT x FROM unnest(coalesce(v_legs, '{}') || coalesce(v_events, '{}')) x
		      EXCEPT SELECT unnest(v_whole)),
		least(coalesce(v_from, 0), p_seq_lo + 1));
END $$;

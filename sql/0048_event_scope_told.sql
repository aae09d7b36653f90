-- 0048_event_scope_told.sql - the event scope step is told the batch's
-- conversations, and reads back only rows that can change.
--
-- Issue 15, measured with pg_stat_statements on bench-etl's 1.08 M-event
-- stream: cdrflow_event_scope_step took 1.1 s per million events.
--
-- 1. It collected the linkedids of the batch's event rows by reading every
--    row of the batch back from cel and ami_event (0.27 s).  cdrflow-etl
--    wrote those rows and knows them: it now COPYs them, once each, into
--    the session's temp table event_scope_batch (linkedid, whole, legs),
--    and says which batch they are of in the transaction's setting
--    cdrflow.event_scope_batch ('node seq_lo seq_hi').  The step uses the
--    table only when the setting names this very batch; otherwise (another
--    writer, or event rows an earlier run stored beyond the checkpoint)
--    it reads the rows as before.
-- 2. The loader's "whole" conversations (no row of them before this
--    batch, etl/evscope.c) were only those with tenant legs in the batch;
--    a conversation of the batch with no tenant leg at all was read back
--    from every event table for nothing.  Now every whole conversation is
--    told, with the number of tenant legs the loader wrote its rows with,
--    and it is left alone when that number is the batch's tenant legs of
--    it in cdr_batch and in cdr (none stored before, none dropped as
--    stored already, none imported; zero for a conversation of nobody's
--    legs, whose rows the loader wrote with no tenants, as the rule says).
--    Requiring the loader's count too closes a gap of 0042: a tenant leg
--    dropped as stored already (by a run with another configuration) is
--    no longer counted on.
-- 3. cdrflow_event_scope() read every event of the conversations it was
--    given, twice (the UPDATE scanned the range again to join).  An event
--    of a conversation without tenant legs gets no tenants, so only such
--    rows that have tenants can change: the others are no longer read;
--    and the rows whose tenants change are updated by their seq (an index
--    probe each) instead of a second scan.  The same rows are written.
-- 4. The step plans its joins over temp tables without statistics (one
--    row, says the planner): a nested loop over the batch's conversations
--    took 0.47 s in one batch.  Like cdrflow_event_scope() it now runs
--    without nested loops.
--
-- 0042's temp table event_scope_whole is still read when a loader of
-- before this migration fills it.

CREATE OR REPLACE FUNCTION cdrflow_event_scope(p_node text, p_linkedids text[], p_seq_from bigint DEFAULT 0) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
	t record;
	v_tenanted text[];
BEGIN
	IF p_linkedids IS NULL OR cardinality(p_linkedids) = 0 THEN
		RETURN;
	END IF;
	-- the conversations with a tenant leg.  None (a warehouse without
	-- tenants, or a batch of none of theirs): every event of them is
	-- nobody's, which is what it already is (an event gets tenants only
	-- from its conversation's tenant legs, and legs are never deleted here)
	SELECT array_agg(DISTINCT l.linkedid) INTO v_tenanted FROM cdr l
	WHERE l.node = p_node AND l.linkedid = ANY (p_linkedids) AND l.tenant IS NOT NULL;
	IF v_tenanted IS NULL THEN
		RETURN;
	END IF;
	FOR t IN SELECT * FROM (VALUES ('cel', 'channame'), ('ami_event', 'channel')) v(tbl, chan) LOOP
		EXECUTE format($q$
		WITH legs AS MATERIALIZED (
			SELECT l.linkedid, l.tenant, l.uniqueid, l.channel, l.dstchannel
			FROM cdr l WHERE l.node = $1 AND l.linkedid = ANY ($4) AND l.tenant IS NOT NULL
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
		), ev AS ( -- a row of no tenant conversation gets none: read only if it has some
			SELECT e.seq, e.linkedid, e.uniqueid, e.%2$I AS chan, e.tenants FROM %1$I e
			WHERE e.node = $1 AND e.seq >= $3 AND e.linkedid = ANY ($2)
			  AND (e.linkedid = ANY ($4) OR e.tenants IS NOT NULL)
		), m AS (
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.uid = ev.uniqueid
			UNION
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.chan = ev.chan
		), scope AS MATERIALIZED ( -- the rows that change, found by seq (not read twice)
			SELECT * FROM (
				SELECT ev.seq, ev.tenants, CASE WHEN cardinality(c.ts) = 1 THEN c.ts ELSE x.ts END AS ts
				FROM ev LEFT JOIN calls c ON c.linkedid = ev.linkedid
				LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant COLLATE "C") AS ts FROM m GROUP BY seq) x
				ON x.seq = ev.seq
			) d WHERE d.tenants IS DISTINCT FROM d.ts
		)
		UPDATE %1$I e SET tenants = s.ts FROM scope s
		WHERE e.node = $1 AND e.seq = ANY (ARRAY(SELECT seq FROM scope))
		  AND e.seq >= $3 AND e.linkedid = ANY ($2) AND e.seq = s.seq
		  AND e.tenants IS DISTINCT FROM s.ts
		$q$, t.tbl, t.chan) USING p_node, p_linkedids, coalesce(p_seq_from, 0), v_tenanted;
	END LOOP;
END $$;

-- The analytics step: the conversations of the batch's legs and events but
-- those the loader wrote whole, their events from the bound the checkpoint
-- before this batch recorded (the checkpoint of this batch is written
-- after the analytics).
CREATE OR REPLACE FUNCTION cdrflow_event_scope_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
	v_legs text[];
	v_events text[];
	v_whole text[] := '{}';
	v_from bigint;
	v_told boolean;
BEGIN
	SELECT cdr_seq INTO v_from FROM etl_checkpoint WHERE node = p_node;
	SELECT array_agg(DISTINCT linkedid) INTO v_legs FROM cdr_batch WHERE node = p_node AND linkedid IS NOT NULL;
	v_told := to_regclass('pg_temp.event_scope_batch') IS NOT NULL
		  AND current_setting('cdrflow.event_scope_batch', true) = format('%s %s %s', p_node, p_seq_lo, p_seq_hi);
	IF v_told THEN
		-- every linkedid of the batch's event rows, as the loader wrote them
		SELECT array_agg(DISTINCT linkedid) INTO v_events FROM pg_temp.event_scope_batch
		WHERE linkedid IS NOT NULL;
		-- whole, and its tenant legs those the loader saw: the batch's
		-- (none dropped as stored already), and no other in cdr
		WITH w AS (SELECT linkedid, min(legs) AS legs FROM pg_temp.event_scope_batch WHERE linkedid IS NOT NULL
			   GROUP BY linkedid HAVING bool_and(whole) AND min(legs) = max(legs)),
		b AS (SELECT linkedid, count(*) AS n FROM cdr_batch
		      WHERE node = p_node AND tenant IS NOT NULL AND linkedid IN (SELECT linkedid FROM w) GROUP BY linkedid),
		a AS (SELECT l.linkedid, count(*) AS n FROM cdr l
		      WHERE l.node = p_node AND l.tenant IS NOT NULL AND l.linkedid = ANY (ARRAY(SELECT linkedid FROM w))
		      GROUP BY l.linkedid)
		SELECT coalesce(array_agg(w.linkedid), '{}') INTO v_whole
		FROM w LEFT JOIN b USING (linkedid) LEFT JOIN a USING (linkedid)
		WHERE coalesce(b.n, 0) = w.legs AND coalesce(a.n, 0) = w.legs;
	ELSE
		SELECT array_agg(DISTINCT linkedid) INTO v_events FROM (
			SELECT linkedid FROM cel WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi AND linkedid IS NOT NULL
			UNION ALL
			SELECT linkedid FROM ami_event WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi
			  AND linkedid IS NOT NULL) e;
		IF to_regclass('pg_temp.event_scope_whole') IS NOT NULL THEN
			-- 0042's loader: whole, and no tenant leg of it but the
			-- batch's (none stored before, none dropped as stored
			-- already, none imported)
			WITH w AS (SELECT DISTINCT linkedid FROM pg_temp.event_scope_whole),
			b AS (SELECT linkedid, count(*) AS n FROM cdr_batch
			      WHERE node = p_node AND tenant IS NOT NULL AND linkedid IN (SELECT linkedid FROM w) GROUP BY linkedid),
			a AS (SELECT l.linkedid, count(*) AS n FROM cdr l
			      WHERE l.node = p_node AND l.tenant IS NOT NULL AND l.linkedid = ANY (ARRAY(SELECT linkedid FROM w))
			      GROUP BY l.linkedid)
			SELECT coalesce(array_agg(b.linkedid), '{}') INTO v_whole FROM b JOIN a USING (linkedid) WHERE a.n = b.n;
		END IF;
	END IF;
	PERFORM cdrflow_event_scope(p_node,
		ARRAY(SELECT DISTINCT x FROM unnest(coalesce(v_legs, '{}') || coalesce(v_events, '{}')) x
		      EXCEPT SELECT unnest(v_whole)),
		least(coalesce(v_from, 0), p_seq_lo + 1));
END $$;

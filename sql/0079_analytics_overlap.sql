-- 0079: a batch's analytics on a connection of their own, while the next
-- batch loads (issue 15: analytics on / off <= 1.10; etl/analyst.c).
--
-- Until now cdrflow_after_batch ran inside the batch's transaction: the
-- server spent as long on the analytics as on the load, on one core, while
-- the other core idled.  Now the loader commits a batch's rows together
-- with what its analytics steps read (the hand-off: the legs and calls as
-- COPYed into cdr_batch and call_batch, the conversations of
-- event_scope_batch, the endpoint-state changes of endpoint_event_batch)
-- in a row of etl_analytics_pending.  A second connection then fills its
-- own batch tables from the same bytes, runs cdrflow_after_batch, and
-- deletes the row in the transaction that commits the analytics' results.
-- The loader commits the next batch only after that: the analytics of a
-- batch see exactly the rows up to their batch, as before, and at most one
-- batch waits for its analytics.  A crash between the two commits leaves
-- the row, and the next run analyses it first.
CREATE TABLE etl_analytics_pending (
	id         bigserial,        -- the order of the batches
	node       text NOT NULL,
	seq_lo     bigint NOT NULL,  -- the batch's events: (seq_lo, seq_hi]; a
	seq_hi     bigint NOT NULL,  -- batch of legs only has seq_lo = seq_hi
	scope_from bigint NOT NULL,  -- etl_checkpoint.cdr_seq before the batch
	told_scope boolean NOT NULL, -- convs is the batch's event_scope_batch
	told_state boolean NOT NULL, -- state is its endpoint_event_batch
	legs       bytea NOT NULL,   -- COPY text rows, as load.c writes them
	calls      bytea NOT NULL,
	convs      bytea NOT NULL,
	state      bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	-- with node: on Citus distributed by node beside the node's
	-- checkpoint and rows (cdrflow_distribute, 0021)
	PRIMARY KEY (node, id)
);
REVOKE ALL ON etl_analytics_pending FROM PUBLIC;
COMMENT ON TABLE etl_analytics_pending IS
	'batches loaded whose analytics have not committed yet (0079, etl/analyst.c)';

-- lz4 where the server has it: the rows are written once and read once
DO $$
BEGIN
	ALTER TABLE etl_analytics_pending ALTER COLUMN legs SET COMPRESSION lz4,
		ALTER COLUMN calls SET COMPRESSION lz4, ALTER COLUMN convs SET COMPRESSION lz4,
		ALTER COLUMN state SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END $$;

-- The event scope step: the bound of the checkpoint before this batch, as
-- the analyst hands it over (cdrflow.scope_from): on the analytics'
-- connection the batch's own checkpoint is committed already.  Else, in
-- the batch's transaction, read from etl_checkpoint as before (0048).
CREATE OR REPLACE FUNCTION cdrflow_event_scope_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
	v_legs text[];
	v_events text[];
	v_whole text[] := '{}';
	v_from bigint := nullif(current_setting('cdrflow.scope_from', true), '')::bigint;
	v_told boolean;
BEGIN
	IF v_from IS NULL THEN
		SELECT cdr_seq INTO v_from FROM etl_checkpoint WHERE node = p_node;
	END IF;
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

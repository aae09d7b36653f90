-- 0041_qos_calls_by_index.sql - the QoS step finds the batch's calls by
-- their key, whatever the statistics say (issue 15: analytics whose cost
-- does not grow with history).
--
-- cdrflow_qos_update_calls() (0011) read the listed calls with
-- "call_id IN (SELECT unnest(p_call_ids))".  During a long load the
-- planner's statistics of call lag behind (autovacuum has not analysed the
-- partition yet: 10 rows estimated, 14,000 there), and it chose a nested
-- loop that compares every stored call with every listed id: 0.8 s per
-- batch at 2 M events, growing with every batch.  The ids now drive the
-- query and each one is looked up in call's (call_id) index (OFFSET 0 keeps
-- the planner from flattening the probe back into that join): the cost is
-- the batch's calls, not the history's.  On Citus the node = p_node filter
-- still routes the whole statement to one shard.
CREATE OR REPLACE FUNCTION cdrflow_qos_update_calls(p_node text, p_call_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_node text[];
	v_call text[];
	v_lk text[];
BEGIN
	SELECT array_agg(c.node), array_agg(c.call_id), array_agg(lk.l)
	INTO v_node, v_call, v_lk
	FROM (SELECT DISTINCT unnest(p_call_ids) AS id) i
	CROSS JOIN LATERAL (SELECT c.node, c.call_id, c.linkedids FROM call c
			    WHERE c.node = p_node AND c.call_id = i.id
			    OFFSET 0) c -- a probe per id, never flattened into a join
	CROSS JOIN LATERAL unnest(c.linkedids) AS lk(l);
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

-- Statistics that keep up with a load.  The plans of the analytics steps
-- (and of reports run meanwhile) depend on the planner knowing how big
-- cdr and call are; autovacuum analyses a table a minute or more after it
-- grew, so while a backlog of millions of events loads in one run the
-- month's partitions look empty (10 rows) when they hold a million, and
-- joins become scans of everything stored.  cdrflow-etl calls this after
-- each committed batch: every partition of cdr or call changed by more
-- than a fifth of its rows (and 1,000) since its last ANALYZE is analysed
-- now, so a partition is analysed about log(size) times as it grows.
-- Returns the partitions analysed.  On Citus the coordinator's partitions
-- hold no rows (the shards do, analysed by their workers): none.
CREATE FUNCTION cdrflow_analyze_grown() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	v_done text[] := '{}';
BEGIN
	FOR r IN SELECT s.relid::regclass AS rel
		 FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid
		 WHERE i.inhparent IN ('cdr'::regclass, 'call'::regclass)
		   AND s.n_mod_since_analyze > 1000 + 0.2 * greatest(s.n_live_tup - s.n_mod_since_analyze, 0)
		 ORDER BY 1
	LOOP
		EXECUTE format('ANALYZE %s', r.rel);
		v_done := v_done || r.rel::text;
	END LOOP;
	RETURN v_done;
END $$;

-- 0065_analyze_sample.sql - the loader's ANALYZE of a growing partition
-- samples 3,000 rows while the partition is young (issue 15).
--
-- cdrflow_analyze_grown (0041, 0043) analyses a partition of cdr or call
-- each time it doubles, so that the analytics' plans of a young partition
-- see its rows (0041: estimates of 10 rows for 14,000).  Under 30,000 rows
-- a full ANALYZE reads every row and builds every column's statistics from
-- all of them: its cost grows with the partition, 0.4 to 0.45 s of server
-- time per million events loaded into an empty month (pg_stat_statements,
-- bench-etl's stream at 1 M and 5 M events), the largest share of the gap
-- between the loader and a raw COPY of its rows.  What those plans need
-- is the size and the keys' distinct counts, not the finest histograms:
-- a statistics target of 10 (a 3,000-row sample) gives them at 0.12 s
-- per million events, and the analytics read no more buffers with it
-- (the same 5.1 M-event load: 4.35 M buffers in cdrflow_after_batch,
-- 4.55 M with full samples).
--
-- A partition of 300,000 rows or more gets the server's own target, as
-- before: there a full ANALYZE samples 30,000 rows whatever the size, it
-- runs once per doubling, and the month's reports plan with its
-- statistics.  Autovacuum analyses every partition with the server's
-- target on its own thresholds (10 % growth) in between.  A column with a
-- target of its own (ALTER TABLE ... SET STATISTICS) keeps it.
CREATE OR REPLACE FUNCTION cdrflow_analyze_grown() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	v_done text[] := '{}';
	v_target text := current_setting('default_statistics_target');
BEGIN
	FOR r IN SELECT s.relid::regclass AS rel, s.n_live_tup
		 FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid
		 WHERE i.inhparent IN ('cdr'::regclass, 'call'::regclass)
		   AND s.n_mod_since_analyze > 1000 + greatest(s.n_live_tup - s.n_mod_since_analyze, 0)
		 ORDER BY 1
	LOOP
		PERFORM set_config('default_statistics_target',
				   CASE WHEN r.n_live_tup < 300000 THEN least(10, v_target::int)::text ELSE v_target END,
				   true);
		EXECUTE format('ANALYZE %s', r.rel);
		v_done := v_done || r.rel::text;
	END LOOP;
	PERFORM set_config('default_statistics_target', v_target, true);
	RETURN v_done;
END $$;

-- 0043_analytics_cheaper_checks.sql - two per-batch costs that bought
-- nothing (issue 15, measured with pg_stat_statements on bench-etl's
-- 1.08 M-event stream).
--
-- 1. yeastar_state_step first asks whether the batch holds a Yeastar event
--    at all: a scan of the batch's every ami_event row on an AMI node
--    (130 ms per million events, for nothing).  A partial index of the
--    Yeastar rows answers it with one probe; on an AMI node it stays empty
--    and costs COPY only the test of its predicate.
-- 2. cdrflow_analyze_grown (0041) analysed a partition of cdr or call each
--    time it grew by a fifth: about log1.2(size) full ANALYZEs, 0.7 s of a
--    million-event load into an empty month.  Doubling keeps the planner's
--    row estimates within a factor of two (what the analytics' plans need:
--    0041 was about estimates of 10 rows for 14,000) with log2(size) runs,
--    about half the work; autovacuum still analyses on its own thresholds.

CREATE INDEX ami_event_yeastar_idx ON ami_event (node, seq) WHERE event LIKE 'Yeastar%';

CREATE OR REPLACE FUNCTION cdrflow_analyze_grown() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	v_done text[] := '{}';
BEGIN
	FOR r IN SELECT s.relid::regclass AS rel
		 FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid
		 WHERE i.inhparent IN ('cdr'::regclass, 'call'::regclass)
		   AND s.n_mod_since_analyze > 1000 + greatest(s.n_live_tup - s.n_mod_since_analyze, 0)
		 ORDER BY 1
	LOOP
		EXECUTE format('ANALYZE %s', r.rel);
		v_done := v_done || r.rel::text;
	END LOOP;
	RETURN v_done;
END $$;

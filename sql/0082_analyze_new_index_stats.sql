-- 0082: statistics for the expression indexes a migration added to tables
-- that hold rows already (issue 15).
--
-- An index on an expression has statistics of its own, gathered by the
-- table's next ANALYZE.  0076 added the legs' quarter-hour index
-- (date_bin('15 minutes', calldate, ...)) to every month already loaded; a
-- closed month is never analysed again (autovacuum counts changes, the
-- loader analyses the partitions that grow), so its index kept no
-- statistics, and the planner guessed 50,000 legs a day.  On the 10 M-leg
-- month the fraud digest of a day then read the quarter-hour index and the
-- (calldate, uniqueid) index and combined them (BitmapAnd): 1.9-2.2 s,
-- against 1.5 s with the index read alone once the month was analysed.
--
--   * cdrflow_analyze_unplanned(): ANALYZE every table of the schema that
--     has rows (pg_class.reltuples > 0) and an expression index without
--     statistics; returns the tables analysed.  A later migration that
--     adds an expression index calls it too.

CREATE FUNCTION cdrflow_analyze_unplanned() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	v_done text[] := '{}';
BEGIN
	FOR r IN SELECT DISTINCT t.oid::regclass AS rel
		 FROM pg_index i
		 JOIN pg_class t ON t.oid = i.indrelid
		 JOIN pg_class x ON x.oid = i.indexrelid
		 WHERE t.relnamespace = current_schema()::regnamespace AND t.relkind = 'r' AND t.reltuples > 0
		   AND i.indexprs IS NOT NULL
		   -- pg_stats, not pg_statistic: the owner who migrates need not
		   -- be a superuser
		   AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = x.relname)
		 ORDER BY 1
	LOOP
		EXECUTE format('ANALYZE %s', r.rel);
		v_done := v_done || r.rel::text;
	END LOOP;
	RETURN v_done;
END $$;

SELECT cdrflow_analyze_unplanned();

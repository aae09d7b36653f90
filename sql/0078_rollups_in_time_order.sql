-- 0078: the rollups stored in the order of their time key (issue 15: a
-- day of a report read from a few pages, not from all of them).
--
-- A migration that builds a rollup from the warehouse (0009, 0031, 0046,
-- 0051, 0055, 0074, 0077) inserts its GROUP BY's rows in hash order: the
-- rows of one quarter hour, hour or day end up on as many pages as there
-- are rows.  On the 10 M-leg month, one day of rollup_quarter_hour (9,792
-- rows, what daily-traffic reads for a day in Asia/Kolkata) lay on 6,826 of
-- its 12,400 pages: 0.5 s to read when they are not cached.  The ETL's
-- steps append in time order, so only what a migration built is scattered.
--
-- cdrflow_rollups_in_time_order() rewrites every rollup table whose primary
-- key starts with its time (hour, quarter, day) in that key's order
-- (CLUSTER): that day then lies on 281 pages.  It skips a table Citus has
-- distributed (its shards are filled from the table's scan when
-- `migrate --distribute` runs, after every migration).  It returns how many
-- tables it rewrote; an operator may run it again after a large backfill.
CREATE FUNCTION cdrflow_rollups_in_time_order() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	t record;
	n integer := 0;
	citus boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
	dist boolean;
BEGIN
	FOR t IN
		SELECT c.oid::regclass AS rel, i.indexrelid::regclass AS idx
		FROM pg_class c
		JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
		  AND c.relname LIKE 'rollup\_%' AND a.atttypid = 'timestamptz'::regtype
		ORDER BY c.relname
	LOOP
		IF citus THEN
			EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
				INTO dist USING t.rel;
			CONTINUE WHEN dist;
		END IF;
		EXECUTE format('CLUSTER %s USING %s', t.rel, t.idx);
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

SELECT cdrflow_rollups_in_time_order();

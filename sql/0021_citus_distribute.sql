-- 0021: cdrflow_distribute(), what `cdrflow-etl migrate --distribute` runs on a
-- Citus coordinator after migrating (docs/scale-out.md).  On plain
-- PostgreSQL nothing calls it and it refuses to run.
--
-- The design:
--   * by node, all colocated with cdr: every table with a node column whose
--     keys contain node (events, legs, calls, checkpoints, the per-node
--     analytics: QoS, queues, endpoint state).  A load batch is one node's:
--     its rows, its analytics reads and its checkpoint live on one shard
--     group, so the batch is a transaction on one worker.
--   * by tenant, colocated with rollup_hourly: the tables keyed by tenant
--     whose tenant is NOT NULL (rollups, alerts, fraud's per-tenant counters).
--   * reference tables (a copy on every node): every other table (rules,
--     settings, prefixes, tenants' limits and allowances (tenant_allowance,
--     fraud_tenant_limit: configuration), reader map, and small per-node
--     bookkeeping whose keys do not contain node: skips, caveats, imports).
--   * local on the coordinator: schema_version and etl_lock (the run locks).
-- Idempotent: tables distributed already are left alone, so migrate runs it
-- again after every later migration and new tables follow the same rules.
-- Returns the number of tables it distributed now.
CREATE FUNCTION cdrflow_distribute() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	n integer := 0;
	v_col text;
	v_with text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
		RAISE EXCEPTION 'cdrflow_distribute: the citus extension is not installed in this database'
			USING ERRCODE = 'feature_not_supported';
	END IF;
	-- one connection per worker for the DDL of this transaction
	SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
	-- Citus runs no trigger that writes another distributed table: on a
	-- distributed cdr the loader registers each leg in cdr_leg_once itself
	-- (etl/load.c), which fails on a second copy as the trigger did.
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'cdr'::regclass AND tgname = 'cdr_leg_once') THEN
		DROP TRIGGER cdr_leg_once ON cdr;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'cdr'::regclass AND tgname = 'cdr_leg_identity') THEN
		DROP TRIGGER cdr_leg_identity ON cdr;
	END IF;
	FOR r IN
		SELECT c.oid::regclass AS tbl, c.relname,
		       (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
			  AND (a.attname = 'node' OR (a.attname = 'tenant' AND a.attnotnull))
			ORDER BY a.attname = 'node' DESC LIMIT 1) AS col
		FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		  AND NOT c.relispartition AND c.relpersistence = 'p'
		  AND c.relname NOT IN ('schema_version', 'etl_lock')
		  AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
		-- the groups' first tables first (they name the colocation groups)
		ORDER BY c.relname NOT IN ('cdr', 'rollup_hourly'), c.relname
	LOOP
		v_col := r.col;
		-- a key without the column: a reference table
		-- configuration read by every node's queries: on every node
		IF r.relname IN ('tenant_allowance', 'fraud_tenant_limit') THEN
			v_col := NULL;
		END IF;
		IF v_col IS NOT NULL AND EXISTS (
			SELECT 1 FROM pg_constraint k WHERE k.conrelid = r.tbl AND k.contype IN ('p', 'u', 'x')
			  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.tbl AND a.attname = v_col
					  AND a.attnum = ANY (k.conkey))) THEN
			v_col := NULL;
		END IF;
		IF v_col IS NULL THEN
			PERFORM create_reference_table(r.tbl);
		ELSE
			v_with := CASE v_col WHEN 'node' THEN 'cdr' ELSE 'rollup_hourly' END;
			IF r.relname = v_with THEN
				v_with := 'none';
			ELSIF NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = to_regclass(v_with)) THEN
				v_with := 'none';
			END IF;
			PERFORM create_distributed_table(r.tbl, v_col, colocate_with => v_with);
		END IF;
		-- the rows that were on the coordinator are copied: drop the local ones
		PERFORM truncate_local_data_after_distributing_table(r.tbl);
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

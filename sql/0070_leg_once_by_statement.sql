-- 0070_leg_once_by_statement.sql - a leg's identity is registered once per
-- statement, not once per row (issue 15: no per-row SQL).
--
-- 0014 filled cdr_leg_once from a row trigger: for every leg inserted into
-- cdr, one INSERT, in a subtransaction of its own (the EXCEPTION block that
-- names the leg on a second copy).  On bench-etl's 5.1 M-event stream that
-- was 133,285 statements, 1.0 s of a load (pg_stat_statements).  A
-- statement trigger with the statement's new rows (a transition table)
-- registers them all with one INSERT, in one subtransaction.  What it
-- refuses is what the row trigger refused, whoever inserts: a leg stored
-- already, or the same leg twice in one statement (unique_violation), and
-- the error still names the first such leg.  Rows backfilled from
-- Master.csv (imported) and legs without a sequence are not registered,
-- as before.  The UPDATE guard (cdr_leg_identity) is unchanged; on a
-- distributed cdr (0021) this trigger is dropped by the same name and the
-- loader registers the legs itself, as before.  An insert straight into a
-- month's partition fires no statement trigger of cdr (the row trigger,
-- cloned to every partition, saw it): write through cdr.
CREATE FUNCTION cdrflow_legs_once() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	d record;
BEGIN
	INSERT INTO cdr_leg_once (node, sequence)
		SELECT node, sequence FROM cdrflow_new_legs WHERE NOT imported AND sequence IS NOT NULL;
	RETURN NULL;
EXCEPTION WHEN unique_violation THEN
	-- the leg to name: one stored before this statement, else one the
	-- statement holds twice (the failed INSERT is rolled back here)
	SELECT n.node, n.sequence, n.uniqueid INTO d
		FROM cdrflow_new_legs n
		WHERE NOT n.imported AND n.sequence IS NOT NULL
		  AND (EXISTS (SELECT 1 FROM cdr_leg_once k WHERE k.node = n.node AND k.sequence = n.sequence)
		       OR (SELECT count(*) FROM cdrflow_new_legs m
			   WHERE m.node = n.node AND m.sequence = n.sequence AND NOT m.imported) > 1)
		ORDER BY n.node, n.sequence LIMIT 1;
	RAISE EXCEPTION 'cdr: leg % of node % (uniqueid %) is already stored', d.sequence, d.node,
		d.uniqueid USING ERRCODE = 'unique_violation';
END $$;

-- a distributed cdr has no such trigger (0021): it stays without
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'cdr'::regclass AND tgname = 'cdr_leg_once') THEN
		DROP TRIGGER cdr_leg_once ON cdr;
		CREATE TRIGGER cdr_leg_once AFTER INSERT ON cdr
			REFERENCING NEW TABLE AS cdrflow_new_legs
			FOR EACH STATEMENT EXECUTE FUNCTION cdrflow_legs_once();
	END IF;
END $$;

-- 0014_leg_once.sql - a leg is stored once; legs and calls say when their clock was odd.
--
-- cdr is partitioned by month on calldate, and a unique index of a
-- partitioned table must contain the partition key: (node, sequence,
-- calldate) would let the same leg in twice with another start time.  So
-- the identity of every rebuilt leg (node, sequence: the engine's creation
-- order, stable across re-runs) goes into one plain table with a primary
-- key, filled by a trigger on every insert into cdr, whoever inserts:
-- a second copy of a leg fails the statement (unique_violation).  Rows
-- backfilled from Master.csv (imported) carry Asterisk's own sequence and
-- are not part of it.  The keys of partitions dropped by retention stay
-- (a few bytes a leg), so a leg cannot come back either.
CREATE TABLE cdr_leg_once (
	node     text   NOT NULL,
	sequence bigint NOT NULL,
	PRIMARY KEY (node, sequence)
);
-- legs stored before this migration (a duplicate already there is kept once)
INSERT INTO cdr_leg_once (node, sequence)
	SELECT DISTINCT node, sequence FROM cdr WHERE NOT imported AND sequence IS NOT NULL
	ON CONFLICT DO NOTHING;

CREATE FUNCTION cdrflow_leg_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		RAISE EXCEPTION 'cdr: the node and sequence of a stored leg do not change (node %, sequence %)',
			OLD.node, OLD.sequence USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	BEGIN
		INSERT INTO cdr_leg_once (node, sequence) VALUES (NEW.node, NEW.sequence);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'cdr: leg % of node % (uniqueid %) is already stored', NEW.sequence, NEW.node,
			NEW.uniqueid USING ERRCODE = 'unique_violation';
	END;
	RETURN NULL;
END $$;

CREATE TRIGGER cdr_leg_once AFTER INSERT ON cdr
	FOR EACH ROW WHEN (NOT NEW.imported AND NEW.sequence IS NOT NULL)
	EXECUTE FUNCTION cdrflow_leg_once();
CREATE TRIGGER cdr_leg_identity BEFORE UPDATE OF node, sequence ON cdr
	FOR EACH ROW WHEN (NOT OLD.imported AND (OLD.node IS DISTINCT FROM NEW.node
						 OR OLD.sequence IS DISTINCT FROM NEW.sequence))
	EXECUTE FUNCTION cdrflow_leg_once();

-- an event of the leg's (the call's) channels had a Timestamp out of line
-- with the stream (a jump, garbage, missing): see docs/cdr-engine.md
ALTER TABLE cdr ADD COLUMN clock_fault boolean NOT NULL DEFAULT false;
ALTER TABLE call ADD COLUMN clock_fault boolean NOT NULL DEFAULT false;

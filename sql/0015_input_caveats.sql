-- 0015_input_caveats.sql - the inputs a node did not send, kept with the data.
--
-- cdrflow-etl --once/--follow run the doctor (docs/asterisk-setup.md) over
-- every range they load.  When the stream proves that an input cdrflow relies
-- on was not sent (Newexten disabled, no Timestamp header, no channelvars, CEL
-- off, ...), one row says for which node and which period, what is lost and
-- which configuration line restores it.  A report or query covering a period
-- prints the caveats that overlap it.  A row is extended (period_end) while
-- the same input stays missing in consecutive loads.
CREATE TABLE input_caveat (
	id           bigserial PRIMARY KEY,
	node         text NOT NULL,
	input        text NOT NULL,        -- stable key: timestamp, newexten, varset, channelvars, cel, ...
	ami_name     text NOT NULL,        -- the AMI name: Newexten, Timestamp header, CEL, ...
	affects_rows boolean NOT NULL,     -- the CDR rows themselves (not only analytics) are affected
	period_start timestamptz NOT NULL,
	period_end   timestamptz NOT NULL,
	caveat       text NOT NULL,        -- "... unknown for node X: Newexten not received"
	evidence     text NOT NULL,        -- what in the stream proves it
	restore      text NOT NULL,        -- the manager.conf / cel.conf line that restores it
	first_seen   timestamptz NOT NULL DEFAULT now(),
	last_seen    timestamptz NOT NULL DEFAULT now(),
	CHECK (period_end >= period_start)
);
CREATE INDEX input_caveat_period ON input_caveat (period_start, period_end);
CREATE INDEX input_caveat_node_input ON input_caveat (node, input, period_end);

-- Caveats of the periods a report covers (overlap, inclusive).
CREATE FUNCTION input_caveats(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (node text, ami_name text, affects_rows boolean, period_start timestamptz, period_end timestamptz,
	       caveat text, restore text)
LANGUAGE sql STABLE AS $$
	SELECT c.node, c.ami_name, c.affects_rows, min(c.period_start), max(c.period_end), c.caveat, c.restore
	FROM input_caveat c
	WHERE c.period_start < p_to AND c.period_end >= p_from
	GROUP BY c.node, c.input, c.ami_name, c.affects_rows, c.caveat, c.restore
	ORDER BY c.node, c.input
$$;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdrflow_reader') THEN
		GRANT SELECT ON input_caveat TO cdrflow_reader;
		GRANT EXECUTE ON FUNCTION input_caveats(timestamptz, timestamptz) TO cdrflow_reader;
	END IF;
END $$;

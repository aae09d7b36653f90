-- 0017_kamailio.sql - Kamailio accounting as a source of legs (docs/sources.md).
--
-- cdrflow-etl reads the acc module's tables (acc_cdrs, missed_calls, acc)
-- of each `sources:` item of type kamailio, in the order of their key, and
-- stores how far it got here in the same transaction as the legs and calls
-- of those rows: a row is loaded exactly once, whatever crashes.  The legs
-- carry node = the source's name, like an Asterisk node's.
CREATE TABLE kamailio_checkpoint (
	source     text   NOT NULL,
	tbl        text   NOT NULL, -- the table's name in the Kamailio database
	last_id    bigint NOT NULL, -- rows with a key up to this one are loaded
	rows       bigint NOT NULL DEFAULT 0,
	skipped    bigint NOT NULL DEFAULT 0, -- rows that could not be read (logged)
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, tbl)
);

-- What kind of source each node is (an AMI node has no row): lets a
-- statement or a query show where a tenant's traffic came from.
CREATE TABLE source_node (
	node text PRIMARY KEY,
	type text NOT NULL
);

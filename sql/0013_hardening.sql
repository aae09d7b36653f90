-- 0013_hardening.sql - issue 14: no silent loss on damaged spools, no tenant
-- can see or stall another.

-- Skips: the only way past a corrupt record or lost records is
-- 'cdrflow-etl skip --node N --segment S --offset O', which checks that the
-- reader really stops there and records it here (who, when, what was lost).
-- The loader passes a corrupt position only when a row here names it.
-- Tenant readers get no privilege on this table.
CREATE TABLE IF NOT EXISTS etl_skip (
	id           bigserial PRIMARY KEY,
	node         text NOT NULL,
	segno        bigint NOT NULL,
	seg_offset   bigint NOT NULL,
	bytes_lost   bigint NOT NULL,   -- bytes of the spool passed over (0 for a sequence gap)
	records_lost bigint,            -- records known to be missing (sequence gap), NULL = unknown
	resume_segno bigint NOT NULL,   -- where reading continues
	resume_offset bigint NOT NULL,
	reason       text NOT NULL,     -- the reader's message
	skipped_by   text NOT NULL DEFAULT current_user,
	skipped_at   timestamptz NOT NULL DEFAULT now(),
	UNIQUE (node, segno, seg_offset)
);

-- The ETL's run locks.  cdrflow-etl used advisory locks on fixed keys, and
-- pg_advisory_lock() is executable by PUBLIC: a tenant reader could take the
-- key and stop every load (and block migrate forever).  A row of this table
-- locked FOR UPDATE needs UPDATE privilege on it, which only its owner (the
-- ETL's role) has: tenant roles can neither take nor hold it.
CREATE TABLE IF NOT EXISTS etl_lock (
	name text PRIMARY KEY
);
INSERT INTO etl_lock (name) VALUES ('load'), ('migrate') ON CONFLICT DO NOTHING;
REVOKE ALL ON etl_lock FROM PUBLIC;
REVOKE ALL ON etl_skip FROM PUBLIC;

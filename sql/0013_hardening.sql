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

-- Events of a call shared by tenants.  0009 showed a reader every cel and
-- ami_event row of a linkedid in which its tenant has a leg: when one call
-- has legs of two tenants (a transfer to another tenant's DID, a forward
-- across tenants), each saw the other's events, numbers and accountcode.
-- Now: a call whose legs (with a tenant) are all the reader's tenant's is
-- visible whole, as before; of a shared call the reader sees only the events
-- of its own channels: the channel of each of its legs (by uniqueid) and the
-- dstchannel of each of its legs (by name) unless that channel is the
-- channel of another tenant's leg.  Other channels' events are not returned.
--
-- The scope is a view that runs with its owner's rights (the ETL's role,
-- which RLS does not restrict), because deciding "shared" needs the other
-- tenant's legs, which the reader cannot see.  It returns only rows of the
-- reader's own tenant (current_user is the reader inside a view), and only
-- node, linkedid and the reader's own channel names and uniqueids.
CREATE OR REPLACE VIEW tenant_event_scope AS
WITH me AS (
	SELECT r.tenant FROM tenant_role r WHERE r.role = current_user
), mine AS (
	SELECT l.node, l.linkedid, l.uniqueid, l.channel, l.dstchannel
	FROM cdr l JOIN me ON l.tenant = me.tenant
	WHERE l.linkedid IS NOT NULL
), shared AS (
	SELECT DISTINCT m.node, m.linkedid
	FROM mine m JOIN cdr o ON o.node = m.node AND o.linkedid = m.linkedid, me
	WHERE o.tenant IS NOT NULL AND o.tenant <> me.tenant
)
SELECT w.node, w.linkedid, true AS whole_call, NULL::text AS uniqueid, NULL::text AS channel
FROM (SELECT node, linkedid FROM mine EXCEPT SELECT node, linkedid FROM shared) w
UNION ALL
SELECT m.node, m.linkedid, false, m.uniqueid, m.channel
FROM mine m JOIN shared s ON s.node = m.node AND s.linkedid = m.linkedid
UNION ALL
SELECT m.node, m.linkedid, false, NULL, m.dstchannel
FROM mine m JOIN shared s ON s.node = m.node AND s.linkedid = m.linkedid, me
WHERE m.dstchannel IS NOT NULL AND m.dstchannel <> ''
  AND NOT EXISTS (SELECT 1 FROM cdr o WHERE o.node = m.node AND o.linkedid = m.linkedid
		  AND o.channel = m.dstchannel AND o.tenant IS NOT NULL AND o.tenant <> me.tenant);
REVOKE ALL ON tenant_event_scope FROM PUBLIC;
GRANT SELECT ON tenant_event_scope TO cdrflow_reader;

DROP POLICY IF EXISTS tenant_reader ON cel;
CREATE POLICY tenant_reader ON cel FOR SELECT TO cdrflow_reader
USING (linkedid IS NOT NULL AND EXISTS (
	SELECT 1 FROM tenant_event_scope s
	WHERE s.node = cel.node AND s.linkedid = cel.linkedid
	  AND (s.whole_call OR s.uniqueid = cel.uniqueid OR s.channel = cel.channame)));
DROP POLICY IF EXISTS tenant_reader ON ami_event;
CREATE POLICY tenant_reader ON ami_event FOR SELECT TO cdrflow_reader
USING (linkedid IS NOT NULL AND EXISTS (
	SELECT 1 FROM tenant_event_scope s
	WHERE s.node = ami_event.node AND s.linkedid = ami_event.linkedid
	  AND (s.whole_call OR s.uniqueid = ami_event.uniqueid OR s.channel = ami_event.channel)));

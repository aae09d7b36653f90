-- 0038_event_scope_once.sql - which tenants may see each event, stated
-- once for both event tables.
--
-- 0020's cdrflow_event_scope() wrote the same visibility query twice, for
-- cel (channel column channame) and ami_event (channel): a fix to one
-- could miss the other.  Here it is one statement, run for each table.
-- The rule (docs/metrics.md, "Tenants and numbers"; tests/t/t2420): an
-- event of a call whose legs have one tenant is that tenant's; of a call
-- shared by several tenants, an event is seen by the tenants whose legs
-- own its channel (by uniqueid or channel name), no one else.
CREATE OR REPLACE FUNCTION cdrflow_event_scope(p_node text, p_linkedids text[]) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
	t record;
BEGIN
	IF p_linkedids IS NULL OR cardinality(p_linkedids) = 0 THEN
		RETURN;
	END IF;
	FOR t IN SELECT * FROM (VALUES ('cel', 'channame'), ('ami_event', 'channel')) v(tbl, chan) LOOP
		EXECUTE format($q$
		WITH legs AS MATERIALIZED (
			SELECT l.linkedid, l.tenant, l.uniqueid, l.channel, l.dstchannel
			FROM cdr l WHERE l.node = $1 AND l.linkedid = ANY ($2) AND l.tenant IS NOT NULL
		), calls AS (
			SELECT linkedid, array_agg(DISTINCT tenant ORDER BY tenant) AS ts FROM legs GROUP BY linkedid
		), shared AS (
			SELECT l.* FROM legs l JOIN calls c USING (linkedid) WHERE cardinality(c.ts) > 1
		), own AS ( -- of a shared call: (linkedid, uniqueid or channel name) -> tenant
			SELECT l.linkedid, l.uniqueid AS uid, l.channel AS chan, l.tenant FROM shared l
			UNION
			SELECT l.linkedid, NULL, l.dstchannel, l.tenant FROM shared l
			WHERE l.dstchannel <> ''
			  AND NOT EXISTS (SELECT 1 FROM shared o WHERE o.linkedid = l.linkedid AND o.channel = l.dstchannel
					  AND o.tenant <> l.tenant)
		), ev AS (
			SELECT e.seq, e.linkedid, e.uniqueid, e.%2$I AS chan FROM %1$I e
			WHERE e.node = $1 AND e.linkedid = ANY ($2)
		), m AS (
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.uid = ev.uniqueid
			UNION
			SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.chan = ev.chan
		), scope AS (
			SELECT ev.seq, CASE WHEN cardinality(c.ts) = 1 THEN c.ts ELSE x.ts END AS ts
			FROM ev LEFT JOIN calls c ON c.linkedid = ev.linkedid
			LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant) AS ts FROM m GROUP BY seq) x ON x.seq = ev.seq
		)
		UPDATE %1$I e SET tenants = s.ts FROM scope s
		WHERE e.node = $1 AND e.linkedid = ANY ($2) AND e.seq = s.seq
		  AND e.tenants IS DISTINCT FROM s.ts
		$q$, t.tbl, t.chan) USING p_node, p_linkedids;
	END LOOP;
END $$;

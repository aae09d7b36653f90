-- 0020: the schema Citus can distribute (issue 13), identical on one server.
--
-- 1. Keys that contain the distribution column.  A distributed table's
--    primary and unique keys must contain its distribution column (docs/
--    scale-out.md: node for the per-node tables, tenant for the per-tenant
--    ones).  The ids stay unique by themselves (bigserial); the key just
--    says so together with the column.
--
-- 2. Row-level security without subqueries.  Citus cannot distribute a
--    table whose policy has a subquery, and a policy that calls a function
--    reading another table would run a distributed query from a query on a
--    shard.  The reader's tenants are therefore kept where every node has
--    them without a query on a table: in role membership.  Each tenant has a
--    NOLOGIN group role, cdrflow_tenant_group(tenant) ('cdrflow_t_' and the
--    md5 of the name: any tenant name fits in a role name), and a tenant
--    reader is a member of its tenant's group (cdrflow_create_tenant_reader
--    grants it; tenant_role still maps reader -> tenant for
--    cdrflow_current_tenant()).  A policy is then an expression on the row:
--    cdrflow_sees_tenant(tenant), which reads only the catalog.  Roles and
--    memberships are replicated to every Citus node by Citus itself.
--
-- 3. Events (cel, ami_event) carry no tenant: 0013 decided per row, through
--    the tenant_event_scope view over the legs, which tenant may see an
--    event.  The same decision is now stored on the row, in tenants (the
--    tenants allowed to see it; NULL: none), by the analytics step
--    cdrflow_event_scope_step after every batch, for every conversation
--    (node, linkedid) that got a leg or an event in the batch.  Same rules
--    as 0013: a call whose legs with a tenant all belong to one tenant is
--    visible whole to that tenant; of a call shared by tenants each sees the
--    events of its own legs' channels (by uniqueid or channel name) and of
--    its legs' dstchannels unless that channel is another tenant's leg.

-- ------------------------------------------------------------ keys

ALTER TABLE queue_call DROP CONSTRAINT queue_call_pkey, ADD PRIMARY KEY (node, id);
ALTER TABLE queue_agent_call DROP CONSTRAINT queue_agent_call_pkey, ADD PRIMARY KEY (node, id);
ALTER TABLE endpoint_state_history DROP CONSTRAINT endpoint_state_history_pkey, ADD PRIMARY KEY (node, id);
ALTER TABLE alert DROP CONSTRAINT alert_pkey, ADD PRIMARY KEY (tenant, id);

-- ------------------------------------------------------------ tenant groups

-- The group role of a tenant (a name, whatever the tenant's length).
CREATE FUNCTION cdrflow_tenant_group(p_tenant text) RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT ('cdrflow_t_' || md5(p_tenant))::name
$$;

-- Whether the current role is a member of the tenant's group (false for a
-- NULL tenant or a tenant without a group).  Reads only pg_roles.
CREATE FUNCTION cdrflow_sees_tenant(p_tenant text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT coalesce((SELECT pg_has_role(current_user, g.oid, 'MEMBER') FROM pg_catalog.pg_roles g
			 WHERE g.rolname = cdrflow_tenant_group(p_tenant)), false)
$$;

-- Whether the current role is a member of the group of any of the tenants.
CREATE FUNCTION cdrflow_sees_any_tenant(p_tenants text[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT coalesce((SELECT bool_or(pg_has_role(current_user, g.oid, 'MEMBER'))
			 FROM unnest(p_tenants) t JOIN pg_catalog.pg_roles g ON g.rolname = cdrflow_tenant_group(t)), false)
$$;

-- The group of a tenant, created when missing; its members are the readers.
CREATE FUNCTION cdrflow_ensure_tenant_group(p_tenant text) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
	g name := cdrflow_tenant_group(p_tenant);
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
		EXECUTE format('CREATE ROLE %I NOLOGIN', g);
		EXECUTE format('COMMENT ON ROLE %I IS %L', g, 'cdrflow tenant ' || p_tenant);
	END IF;
	RETURN g;
END $$;

-- Readers created before this migration join their tenant's group.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT role, tenant FROM tenant_role LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role) THEN
			EXECUTE format('GRANT %I TO %I', cdrflow_ensure_tenant_group(r.tenant), r.role);
		END IF;
	END LOOP;
END $$;

-- ------------------------------------------------------------ events: tenants on the row

ALTER TABLE cel ADD COLUMN tenants text[];
ALTER TABLE ami_event ADD COLUMN tenants text[];

-- Store who may see the events of the conversations p_linkedids of node
-- p_node (the rules above).  Every statement names one node: on Citus it
-- runs on that node's shard alone.
-- (Hash joins: inside a load's transaction the fresh partitions have no
-- statistics yet and a nested loop over thousands of events would be
-- quadratic.)
CREATE FUNCTION cdrflow_event_scope(p_node text, p_linkedids text[]) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
BEGIN
	IF p_linkedids IS NULL OR cardinality(p_linkedids) = 0 THEN
		RETURN;
	END IF;
	WITH legs AS MATERIALIZED (
		SELECT l.linkedid, l.tenant, l.uniqueid, l.channel, l.dstchannel
		FROM cdr l WHERE l.node = p_node AND l.linkedid = ANY (p_linkedids) AND l.tenant IS NOT NULL
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
		SELECT e.seq, e.linkedid, e.uniqueid, e.channame AS chan FROM cel e
		WHERE e.node = p_node AND e.linkedid = ANY (p_linkedids)
	), m AS (
		SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.uid = ev.uniqueid
		UNION
		SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.chan = ev.chan
	), scope AS (
		SELECT ev.seq, CASE WHEN cardinality(c.ts) = 1 THEN c.ts ELSE x.ts END AS ts
		FROM ev LEFT JOIN calls c ON c.linkedid = ev.linkedid
		LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant) AS ts FROM m GROUP BY seq) x ON x.seq = ev.seq
	)
	UPDATE cel e SET tenants = s.ts FROM scope s
	WHERE e.node = p_node AND e.linkedid = ANY (p_linkedids) AND e.seq = s.seq
	  AND e.tenants IS DISTINCT FROM s.ts;
	WITH legs AS MATERIALIZED (
		SELECT l.linkedid, l.tenant, l.uniqueid, l.channel, l.dstchannel
		FROM cdr l WHERE l.node = p_node AND l.linkedid = ANY (p_linkedids) AND l.tenant IS NOT NULL
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
		SELECT e.seq, e.linkedid, e.uniqueid, e.channel AS chan FROM ami_event e
		WHERE e.node = p_node AND e.linkedid = ANY (p_linkedids)
	), m AS (
		SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.uid = ev.uniqueid
		UNION
		SELECT ev.seq, o.tenant FROM ev JOIN own o ON o.linkedid = ev.linkedid AND o.chan = ev.chan
	), scope AS (
		SELECT ev.seq, CASE WHEN cardinality(c.ts) = 1 THEN c.ts ELSE x.ts END AS ts
		FROM ev LEFT JOIN calls c ON c.linkedid = ev.linkedid
		LEFT JOIN (SELECT seq, array_agg(tenant ORDER BY tenant) AS ts FROM m GROUP BY seq) x ON x.seq = ev.seq
	)
	UPDATE ami_event e SET tenants = s.ts FROM scope s
	WHERE e.node = p_node AND e.linkedid = ANY (p_linkedids) AND e.seq = s.seq
	  AND e.tenants IS DISTINCT FROM s.ts;
END $$;

-- The analytics step: the conversations of the batch's legs and events.
CREATE FUNCTION cdrflow_event_scope_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_legs text[];
	v_events text[];
BEGIN
	SELECT array_agg(DISTINCT linkedid) INTO v_legs FROM cdr_batch WHERE node = p_node AND linkedid IS NOT NULL;
	SELECT array_agg(DISTINCT linkedid) INTO v_events FROM (
		SELECT linkedid FROM cel WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi AND linkedid IS NOT NULL
		UNION ALL
		SELECT linkedid FROM ami_event WHERE node = p_node AND seq > p_seq_lo AND seq <= p_seq_hi
		  AND linkedid IS NOT NULL) e;
	PERFORM cdrflow_event_scope(p_node, ARRAY(SELECT DISTINCT x FROM unnest(coalesce(v_legs, '{}') || coalesce(v_events, '{}')) x));
END $$;
INSERT INTO analytics_step (fn, ord) VALUES ('cdrflow_event_scope_step', 950);

-- The events already stored.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT node, array_agg(DISTINCT linkedid) AS ids FROM cdr WHERE tenant IS NOT NULL GROUP BY node LOOP
		PERFORM cdrflow_event_scope(r.node, r.ids);
	END LOOP;
END $$;

-- ------------------------------------------------------------ policies

DROP POLICY IF EXISTS tenant_reader ON cel;
DROP POLICY IF EXISTS tenant_reader ON ami_event;
DROP VIEW IF EXISTS tenant_event_scope;
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT polrelid::regclass AS tbl FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
		 WHERE p.polname = 'tenant_reader' AND c.relnamespace = current_schema()::regnamespace
		   AND c.relname <> 'tenant_role'
	LOOP
		EXECUTE format('DROP POLICY tenant_reader ON %s', r.tbl);
	END LOOP;
END $$;

-- Enable RLS with the reader policy on every table of this schema that has
-- a tenant column (partitioned parents and plain tables; partitions are not
-- granted, so readers go through the parent) and on cel and ami_event by
-- their tenants, and grant SELECT on them, on the reference tables and on
-- every security_invoker view.  Idempotent: run again after adding tables
-- (cdrflow_create_tenant_reader does).
CREATE OR REPLACE FUNCTION cdrflow_tenant_rls() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.oid::regclass AS tbl
		 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped
		 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		   AND NOT c.relispartition AND c.relname <> 'tenant_role'
	LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.tbl);
		IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = r.tbl AND polname = 'tenant_reader') THEN
			EXECUTE format('CREATE POLICY tenant_reader ON %s FOR SELECT TO cdrflow_reader '
				       'USING (cdrflow_sees_tenant(tenant))', r.tbl);
		END IF;
		EXECUTE format('GRANT SELECT ON %s TO cdrflow_reader', r.tbl);
	END LOOP;
	FOR r IN SELECT c.oid::regclass AS tbl
		 FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
		   AND c.relname IN ('cel', 'ami_event')
	LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.tbl);
		IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = r.tbl AND polname = 'tenant_reader') THEN
			EXECUTE format('CREATE POLICY tenant_reader ON %s FOR SELECT TO cdrflow_reader '
				       'USING (cdrflow_sees_any_tenant(tenants))', r.tbl);
		END IF;
		EXECUTE format('GRANT SELECT ON %s TO cdrflow_reader', r.tbl);
	END LOOP;
	GRANT SELECT ON rollup_country_code TO cdrflow_reader;
	FOR r IN SELECT c.oid::regclass AS v
		 FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'
		   AND c.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on',
						      'security_invoker=1', 'security_invoker=yes']
	LOOP
		EXECUTE format('GRANT SELECT ON %s TO cdrflow_reader', r.v);
	END LOOP;
END $$;

-- Create (or reuse) a role reading only tenant p_tenant's rows: a member of
-- the tenant's group (and of no other tenant's group: a role reused for
-- another tenant leaves its former group).  A reused role must not be a
-- superuser or have BYPASSRLS (it would see everything).
CREATE OR REPLACE FUNCTION cdrflow_create_tenant_reader(p_tenant text, p_role text, p_login boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r pg_roles%ROWTYPE;
	old text;
BEGIN
	IF p_tenant IS NULL OR p_tenant = '' THEN
		RAISE EXCEPTION 'cdrflow_create_tenant_reader: empty tenant';
	END IF;
	SELECT * INTO r FROM pg_roles WHERE rolname = p_role;
	IF NOT FOUND THEN
		EXECUTE format('CREATE ROLE %I %s', p_role, CASE WHEN p_login THEN 'LOGIN' ELSE 'NOLOGIN' END);
	ELSIF r.rolsuper OR r.rolbypassrls THEN
		RAISE EXCEPTION 'cdrflow_create_tenant_reader: role % is a superuser or has BYPASSRLS: it would see every tenant', p_role;
	END IF;
	EXECUTE format('GRANT cdrflow_reader TO %I', p_role);
	SELECT tenant INTO old FROM tenant_role WHERE role = p_role;
	IF old IS NOT NULL AND old <> p_tenant
	   AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = cdrflow_tenant_group(old)) THEN
		EXECUTE format('REVOKE %I FROM %I', cdrflow_tenant_group(old), p_role);
	END IF;
	EXECUTE format('GRANT %I TO %I', cdrflow_ensure_tenant_group(p_tenant), p_role);
	INSERT INTO tenant_role (role, tenant) VALUES (p_role, p_tenant)
	ON CONFLICT (role) DO UPDATE SET tenant = excluded.tenant;
	PERFORM cdrflow_tenant_rls();
END $$;

SELECT cdrflow_tenant_rls();

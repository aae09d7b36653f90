-- 0037_fraud_reads_leg_facts.sql - the fraud rules read the facts of a leg
-- that cdrflow-etl derived and stored (etl/legclass.c), instead of deriving
-- their own (issue 10: one home per fact).
--
-- Before, fraud_build_attempts() had its own rules for four facts the
-- reports also show, and they disagreed with the stored ones:
--   * direction from dcontext (fraud_dir), while cdr.direction came from
--     the trunk globs: "outbound" in a report was not "outbound" in an
--     alert.  Now legclass decides direction once: by trunk globs, else by
--     fraud.inbound_contexts / fraud.outbound_contexts, else "unknown"
--     (which the rules still watch as outbound, as an empty context list
--     did: fraud_leg_dir);
--   * E.164 from the raw digits (fraud_e164, 3-15 digits), beside the
--     stored src_e164/dst_e164 (7-15): now only the stored ones;
--   * the country from a second table, country_code, whose codes for +1
--     and the global services differed from rollup_country_code's (NANP vs
--     US, XG vs XS for +881 ...): now cdr.dst_country, from the one table.
--     country_code is a view of rollup_country_code, so readers of the
--     old name see the one table; fraud_tenant_country moves to its codes;
--   * "international": a number was international when it had an E.164
--     form, so with a numbering plan every national call was international
--     (new_country, out_of_hours, concurrent_intl, wangiri fired on the
--     home country).  Now cdr.src_intl / dst_intl (new here) say whether
--     the number is outside the home country of the tenant's plan.
-- Legs stored before this migration have no src_intl/dst_intl; the rules
-- take E.164-ness for them (what the old rule did), for the minutes of
-- history a window reaches back.

-- rule functions are SQL over the per-batch tables (fraud_att, fraud_hit)
SET LOCAL check_function_bodies = off;

ALTER TABLE cdr ADD COLUMN src_intl boolean, ADD COLUMN dst_intl boolean;
COMMENT ON COLUMN cdr.src_intl IS 'src_e164 is outside the home country of the tenant''s numbering plan (cdrflow-etl)';
COMMENT ON COLUMN cdr.dst_intl IS 'dst_e164 is outside the home country of the tenant''s numbering plan (cdrflow-etl)';

-- the one country table, under its old name too
INSERT INTO fraud_tenant_country (tenant, country, first_seen, first_call)
	SELECT t.tenant, n.iso, min(t.first_seen), min(t.first_call)
	FROM fraud_tenant_country t
	JOIN country_code o ON o.iso = t.country
	JOIN rollup_country_code n ON n.prefix = o.prefix
	WHERE n.iso <> t.country
	GROUP BY t.tenant, n.iso
	ON CONFLICT DO NOTHING;
DELETE FROM fraud_tenant_country t
	WHERE NOT EXISTS (SELECT 1 FROM rollup_country_code n WHERE n.iso = t.country);
DROP FUNCTION fraud_cc(text);
DROP TABLE country_code;
CREATE VIEW country_code AS SELECT prefix, iso, name FROM rollup_country_code;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdrflow_reader') THEN
		GRANT SELECT ON country_code TO cdrflow_reader;
	END IF;
END $$;

-- A stored direction as the rules see it: 'in', 'out' (unknown counts as
-- outbound: with no trunks and no contexts configured every leg is
-- watched), NULL for internal legs.
CREATE FUNCTION fraud_leg_dir(direction text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE direction WHEN 'inbound' THEN 'in' WHEN 'outbound' THEN 'out' WHEN 'unknown' THEN 'out' END
$$;
DROP FUNCTION fraud_dir(text, text[], text[]);
DROP FUNCTION fraud_device(text);
DROP FUNCTION fraud_e164(text);

-- The attempts of this batch (and the history its windows reach) in the
-- session table fraud_att, from the stored facts of each leg.
CREATE OR REPLACE FUNCTION fraud_build_attempts() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_lo timestamptz;
	v_hi timestamptz;
	v_back interval;
	v_fwd interval;
	v_rules boolean;
	v_windows boolean;
	v_nodes text[];
	v_linkedids text[];
BEGIN
	IF to_regclass('pg_temp.fraud_att') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_att;
	END IF;
	SELECT min(calldate), max("end") INTO v_lo, v_hi FROM cdr_batch;
	SELECT coalesce(max(w), '0')
	INTO v_fwd
	FROM (SELECT (params->>'window_ms')::bigint * interval '1 millisecond' AS w FROM fraud_rule
	      WHERE enabled AND params ? 'window_ms') r;
	v_back := greatest(v_fwd, coalesce((SELECT (value #>> '{}')::bigint FROM fraud_setting
					     WHERE name = 'max_call_duration_ms'), 14400000) * interval '1 millisecond');
	SELECT count(*) > 0, coalesce(bool_or(kind NOT IN ('hotlist', 'new_country', 'out_of_hours')), false)
	INTO v_rules, v_windows
	FROM fraud_rule
	WHERE enabled AND kind NOT IN ('allowance', 'endpoint_unreachable', 'endpoint_recovered');
	-- the stored legs the rules may look at, read first on their own: on
	-- Citus a distributed table is not joined with the session's cdr_batch
	IF to_regclass('pg_temp.fraud_hist') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_hist;
	END IF;
	SELECT array_agg(DISTINCT node), array_agg(DISTINCT linkedid) INTO v_nodes, v_linkedids FROM cdr_batch;
	EXECUTE format($q$
	CREATE TEMP TABLE fraud_hist ON COMMIT DROP AS
	SELECT l.node, l.linkedid, l.dst, l.direction, l.trunk, l.tenant, l.src, l.calldate,
	       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164, l.dst_country,
	       coalesce(l.dst_intl, l.dst_e164 IS NOT NULL) AS dst_intl,
	       coalesce(l.src_intl, l.src_e164 IS NOT NULL) AS src_intl,
	       l.uniqueid, l.sequence, l.channel, l.lastapp
	FROM cdr l
	WHERE $1::timestamptz IS NOT NULL AND l.calldate >= $1 - $3 AND l.calldate <= $2 + $4 %s
	$q$, CASE WHEN v_windows THEN ''
		  -- without a sliding window: only the batch's conversations
		  ELSE 'AND l.node = ANY ($5) AND l.linkedid = ANY ($6)' END)
	USING v_lo, v_hi, v_back, v_fwd, v_nodes, v_linkedids;
	IF NOT v_windows THEN
		DELETE FROM fraud_hist h WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = h.node
							   AND b.linkedid = h.linkedid);
	END IF;
	CREATE TEMP TABLE fraud_att ON COMMIT DROP AS
	WITH legs AS (
		SELECT b.node, b.linkedid, b.dst, b.direction, b.trunk, b.tenant, b.src, b.calldate,
		       b."end", b.billsec, b.duration, b.disposition, b.sell_cost, b.dst_e164, b.src_e164,
		       b.dst_country, coalesce(b.dst_intl, b.dst_e164 IS NOT NULL) AS dst_intl,
		       coalesce(b.src_intl, b.src_e164 IS NOT NULL) AS src_intl, true AS in_batch
		FROM cdr_batch b
		UNION ALL
		SELECT l.node, l.linkedid, l.dst, l.direction, l.trunk, l.tenant, l.src, l.calldate,
		       l."end", l.billsec, l.duration, l.disposition, l.sell_cost, l.dst_e164, l.src_e164,
		       l.dst_country, l.dst_intl, l.src_intl, false
		FROM fraud_hist l
		WHERE NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = l.node AND b.uniqueid = l.uniqueid
				  AND b.calldate = l.calldate AND b.sequence IS NOT DISTINCT FROM l.sequence
				  AND b.channel = l.channel AND b.lastapp = l.lastapp)
	), d AS (
		SELECT x.*, fraud_leg_dir(x.direction) AS dir FROM legs x
	), g AS (
		SELECT d.node, d.linkedid, d.dst, d.dir,
		       max(coalesce(d.tenant, '')) AS tenant,
		       min(d.src) AS src,
		       max(nullif(d.trunk, '')) AS trunk,
		       min(d.calldate) AS start, max(d."end") AS "end",
		       max(d.billsec) AS billsec, max(d.duration) AS duration,
		       bool_or(d.disposition = 'ANSWERED') AS answered,
		       round(sum(d.sell_cost::numeric) / 1000000, 6) AS cost,
		       bool_or(d.in_batch) AS in_batch,
		       max(d.dst_e164) AS dst_e164, max(d.src_e164) AS src_e164,
		       max(d.dst_country) AS dst_country,
		       bool_or(d.dst_intl) AS dst_intl, bool_or(d.src_intl) AS src_intl
		FROM d WHERE d.dir IS NOT NULL
		GROUP BY d.node, d.linkedid, d.dst, d.dir
	)
	SELECT g.*, coalesce(g.dst_country, CASE WHEN g.dst_e164 IS NOT NULL THEN 'unknown' END) AS country,
	       CASE WHEN coalesce(g.dst_e164, g.dst) ~ '^\+?[0-9]{1,30}$'
		    THEN ltrim(coalesce(g.dst_e164, g.dst), '+')::numeric END AS dst_num
	FROM g;
	DROP TABLE pg_temp.fraud_hist;
	IF v_rules THEN
		CREATE INDEX ON fraud_att (tenant, start);
		ANALYZE fraud_att;
	END IF;
END $$;

-- new_country: an outbound international attempt to a country the tenant
-- had not dialled before this batch.  The calling code shown is the
-- longest prefix of the country table that names the country and starts
-- the numbers.
CREATE OR REPLACE FUNCTION fraud_eval_new_country(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
	SELECT r.name, h.tenant, h.country, h.ws, h.we, h.ev,
	       jsonb_build_object('country_code', (SELECT c.prefix FROM rollup_country_code c
						   WHERE c.iso = h.country AND h.number LIKE '+' || c.prefix || '%'
						   ORDER BY length(c.prefix) DESC LIMIT 1),
				  'numbers', h.numbers, 'attempts', h.attempts)
	FROM (SELECT a.tenant, a.country, min(a.start) AS ws, max(a."end") AS we,
		     array_agg(DISTINCT a.linkedid ORDER BY a.linkedid) AS ev, array_agg(DISTINCT a.dst_e164) AS numbers,
		     min(a.dst_e164) AS number, count(*) AS attempts
	      FROM fraud_att a
	      WHERE a.in_batch AND a.dir = 'out' AND a.dst_intl
		AND NOT (a.country = ANY (coalesce((SELECT array_agg(x) FROM jsonb_array_elements_text(r.params->'exclude') x), '{}')))
		AND NOT EXISTS (SELECT 1 FROM fraud_tenant_country t WHERE t.tenant = a.tenant AND t.country = a.country)
	      GROUP BY a.tenant, a.country) h
$$;

CREATE OR REPLACE FUNCTION fraud_eval_out_of_hours(r fraud_rule) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT $1, a.tenant, (%1$s)::text, min(a.start), max(a."end"), array_agg(DISTINCT a.linkedid ORDER BY a.linkedid),
		       jsonb_build_object('attempts', count(*), 'numbers', array_agg(DISTINCT a.dst_e164),
					  'timezone', coalesce($2->>'timezone', 'UTC'))
		FROM fraud_att a
		WHERE a.in_batch AND a.dir = 'out' AND a.dst_intl AND coalesce((%1$s)::text, '') <> ''
		  AND NOT fraud_in_hours(a.start, $2)
		GROUP BY a.tenant, (%1$s)::text
	$q$, fraud_subject_sql(r.params->>'per')) USING r.name, r.params;
END $$;

CREATE OR REPLACE FUNCTION fraud_eval_concurrent_intl(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_concurrency_hits(r.name, $f$a.dir = 'out' AND a.dst_intl$f$,
				      fraud_subject_sql(r.params->>'per'), quote_literal(r.params->>'max'))
$$;

CREATE OR REPLACE FUNCTION fraud_eval_wangiri(r fraud_rule) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_digits integer := coalesce((r.params->>'prefix_digits')::integer, 0);
	v_win interval := fraud_window(r, '10 minutes');
	v_ring integer := coalesce((r.params->>'max_ring')::integer, 5);
	v_count integer := coalesce((r.params->>'count')::integer, 5);
BEGIN
	WITH fa AS (
		SELECT a.*, CASE WHEN v_digits > 0 THEN left(a.src_e164, v_digits + 1) ELSE a.src_e164 END AS subj
		FROM fraud_att a
		WHERE a.dir = 'in' AND a.src_intl AND NOT a.answered AND a.duration <= v_ring
	), anchor AS (
		SELECT DISTINCT x.tenant, x.subj, x.start AS t FROM fa x
		WHERE EXISTS (SELECT 1 FROM fa y WHERE y.in_batch AND y.tenant = x.tenant AND y.subj = x.subj
			      AND y.start > x.start - v_win AND y.start <= x.start)
	), w AS (
		SELECT an.tenant, an.subj, an.t, count(DISTINCT f.dst) AS n, min(f.start) AS ws,
		       array_agg(DISTINCT f.linkedid ORDER BY f.linkedid) AS ev, array_agg(DISTINCT f.dst) AS called,
		       array_agg(DISTINCT f.src_e164) AS callers
		FROM anchor an JOIN fa f ON f.tenant = an.tenant AND f.subj = an.subj
					 AND f.start > an.t - v_win AND f.start <= an.t
		GROUP BY an.tenant, an.subj, an.t
	)
	INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
	SELECT DISTINCT ON (tenant, subj) r.name, tenant, subj, ws, t, ev,
	       jsonb_build_object('called', n, 'numbers', called, 'callers', callers, 'limit', v_count)
	FROM w WHERE n >= v_count
	ORDER BY tenant, subj, n DESC, t;
END $$;

CREATE OR REPLACE FUNCTION fraud_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r fraud_rule;
BEGIN
	IF to_regclass('pg_temp.cdr_batch') IS NULL THEN
		CREATE TEMP TABLE cdr_batch (LIKE cdr INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
	END IF;
	PERFORM fraud_hit_table();
	PERFORM fraud_build_attempts();
	FOR r IN SELECT * FROM fraud_rule
		 WHERE enabled AND kind NOT IN ('allowance', 'endpoint_unreachable', 'endpoint_recovered')
		 ORDER BY name
	LOOP
		EXECUTE format('SELECT fraud_eval_%s($1)', r.kind) USING r;
	END LOOP;
	-- what the rules compare with is updated after them
	INSERT INTO fraud_tenant_country (tenant, country, first_seen, first_call)
		SELECT DISTINCT ON (tenant, country) tenant, country, start, linkedid
		FROM fraud_att WHERE in_batch AND dir = 'out' AND dst_intl
		ORDER BY tenant, country, start
		ON CONFLICT DO NOTHING;
	PERFORM fraud_usage_step();
	PERFORM fraud_state_step(p_node, p_seq_lo, p_seq_hi);
	PERFORM fraud_raise();
	DROP TABLE fraud_hit;
	DROP TABLE fraud_att;
END $$;

-- allowance: the tenant's billable outbound minutes of the month
CREATE OR REPLACE FUNCTION fraud_usage_step() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r fraud_rule;
BEGIN
	SELECT * INTO r FROM fraud_rule WHERE kind = 'allowance' ORDER BY name LIMIT 1;
	CREATE TEMP TABLE fraud_usage_delta ON COMMIT DROP AS
		SELECT coalesce(b.tenant, '') AS tenant,
		       to_char(b.calldate AT TIME ZONE coalesce(r.params->>'timezone', 'UTC'), 'YYYY-MM') AS period,
		       sum(b.billsec)::bigint AS add, array_agg(DISTINCT b.linkedid ORDER BY b.linkedid) AS ev,
		       min(b.calldate) AS ws, max(b."end") AS we
		FROM cdr_batch b
		WHERE fraud_leg_dir(b.direction) = 'out' AND b.dstchannel <> '' AND b.billsec > 0
		GROUP BY 1, 2;
	IF r.name IS NOT NULL AND r.enabled THEN
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT r.name, d.tenant, d.period || ':' || lvl || '%', d.ws, d.we, d.ev,
		       jsonb_build_object('level', lvl, 'used_minutes', round((coalesce(u.billsec, 0) + d.add) / 60.0, 2),
					  'allowance_minutes', lim, 'period', d.period)
		FROM fraud_usage_delta d
		LEFT JOIN fraud_usage u ON u.tenant = d.tenant AND u.period = d.period
		CROSS JOIN LATERAL (SELECT fraud_tenant_limit_value(d.tenant, 'allowance_minutes') AS lim) l
		CROSS JOIN LATERAL (SELECT x::numeric AS lvl FROM jsonb_array_elements_text(coalesce(r.params->'levels', '[80, 100]')) x) v
		WHERE l.lim IS NOT NULL
		  AND coalesce(u.billsec, 0) * 100 < lvl * l.lim * 60
		  AND (coalesce(u.billsec, 0) + d.add) * 100 >= lvl * l.lim * 60;
	END IF;
	INSERT INTO fraud_usage (tenant, period, billsec)
		SELECT tenant, period, add FROM fraud_usage_delta
		ON CONFLICT (tenant, period) DO UPDATE SET billsec = fraud_usage.billsec + excluded.billsec;
	DROP TABLE fraud_usage_delta;
END $$;

-- 0012_allowance_from_tenants.sql - one place for a tenant's allowance.
--
-- tenants.allowances (table tenant_allowance, filled by cdrflow-etl) drives
-- the usage view; the allowance alert (alerts: section) read only its own
-- alerts.tenants[].allowance_minutes.  A tenant without one there now falls
-- back to tenant_allowance, so configuring the allowance once is enough.
CREATE OR REPLACE FUNCTION fraud_tenant_limit_value(p_tenant text, p_what text) RETURNS numeric
LANGUAGE sql STABLE AS $$
	SELECT coalesce(
		(SELECT CASE p_what WHEN 'allowance_minutes' THEN l.allowance_minutes
				    WHEN 'max_concurrent' THEN l.max_concurrent
				    WHEN 'max_cps' THEN l.max_cps END
		 FROM fraud_tenant_limit l WHERE l.tenant IN (p_tenant, '*')
		 ORDER BY l.tenant = '*' LIMIT 1),
		CASE WHEN p_what = 'allowance_minutes'
		     THEN (SELECT a.minutes FROM tenant_allowance a WHERE a.tenant = p_tenant AND a.minutes > 0) END)
$$;

-- 0050: one tenant's legs and calls through an index (issue 15).  The
-- dictionary's views key a row by coalesce(tenant, '') (rollup_leg_v,
-- metric_call_v: '' is "no tenant"), so "v.tenant = 'acme'" is a filter on
-- that expression, which the (tenant, calldate) and (tenant, start)
-- indexes do not serve: tenant-statement read every leg of the month for
-- one tenant (16 s at 10 M legs a month).  These indexes are on the very
-- expression the views filter.
CREATE INDEX cdr_tenant_key_calldate_idx ON cdr ((coalesce(tenant, '')), calldate);
CREATE INDEX call_tenant_key_start_idx ON call ((coalesce(tenant, '')), start);

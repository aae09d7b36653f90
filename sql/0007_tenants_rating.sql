-- 0007_tenants_rating.sql - tenants, E.164 numbers, direction and rating on
-- every leg (computed by cdrflow-etl from the tenants/numbering/rating
-- configuration, see docs/metrics.md), and prepaid-style allowances.
ALTER TABLE cdr
	ADD COLUMN IF NOT EXISTS direction text,   -- inbound, outbound, internal, unknown
	ADD COLUMN src_e164    text,               -- NULL when src is not a number (an extension)
	ADD COLUMN dst_e164    text,
	ADD COLUMN carrier     text,               -- the carrier whose trunk the leg left by
	ADD COLUMN rate_status text,               -- rated, no_buy_rate, no_sell_rate, not_billable; NULL = not a carrier leg
	ADD COLUMN buy_cost    bigint,             -- micro-units of currency; NULL = unknown (see rate_status)
	ADD COLUMN sell_cost   bigint,
	ADD COLUMN margin      bigint,
	ADD COLUMN buy_prefix  text,               -- the deck prefixes that matched (audit)
	ADD COLUMN sell_prefix text;
CREATE INDEX cdr_dst_e164_idx ON cdr (dst_e164, calldate);
CREATE INDEX cdr_unrated_idx ON cdr (calldate) WHERE rate_status IN ('no_buy_rate', 'no_sell_rate');

ALTER TABLE call
	ADD COLUMN buy_cost  bigint,
	ADD COLUMN sell_cost bigint;

-- tenants.allowances in the configuration, replaced by cdrflow-etl at start
CREATE TABLE tenant_allowance (
	tenant  text PRIMARY KEY,
	minutes bigint NOT NULL CHECK (minutes >= 0)
);

-- Minutes used per tenant per calendar month (UTC): billsec of the legs that
-- left by a carrier trunk, rounded up to whole minutes per leg.
CREATE VIEW tenant_usage WITH (security_invoker = true) AS
SELECT u.tenant, u.month, u.legs, u.minutes, a.minutes AS allowance,
       CASE WHEN a.minutes > 0 THEN round(100.0 * u.minutes / a.minutes, 1) END AS used_pct
FROM (SELECT tenant, date_trunc('month', calldate AT TIME ZONE 'UTC') AS month, count(*) AS legs,
             sum((billsec + 59) / 60) AS minutes
      FROM cdr WHERE carrier IS NOT NULL AND billsec > 0 AND tenant IS NOT NULL
      GROUP BY 1, 2) u
LEFT JOIN tenant_allowance a USING (tenant);

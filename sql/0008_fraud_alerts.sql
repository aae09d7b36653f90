-- 0008_fraud_alerts.sql - fraud rules, threshold alerts, endpoint state.
--
-- Everything here runs inside the ETL's batch transaction through the
-- analytics hook (fraud_after_batch, registered in analytics_step), so rule
-- hits, alerts, usage counters and state history are written exactly once.
--
-- Configuration comes from the ETL's YAML (fraud: and alerts: sections,
-- etl/fraudcfg.c validates them) through fraud_config_apply(jsonb), which
-- replaces the rows of fraud_setting, fraud_rule and fraud_tenant_limit in
-- one statement.  Definitions, units and edge cases: docs/metrics.md,
-- "Fraud and alerts".

-- Some rule functions are SQL functions over the per-batch temporary
-- tables (fraud_att, fraud_hit), which do not exist yet.
SET LOCAL check_function_bodies = off;

-- E.164 country codes (ITU-T E.164 assignment list, incl. the global
-- service codes 800/808/870/878/881/882/883/888/979/991).  NANP is '1'
-- plus the Caribbean area codes that are separate countries.
CREATE TABLE country_code (
	prefix  text PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,4}$'),
	iso     text NOT NULL,
	name    text NOT NULL
);
INSERT INTO country_code (prefix, iso, name) VALUES
	('1', 'NANP', 'North American Numbering Plan (US, CA, Caribbean)'),
	('1242', 'BS', 'Bahamas'),
	('1246', 'BB', 'Barbados'),
	('1264', 'AI', 'Anguilla'),
	('1268', 'AG', 'Antigua and Barbuda'),
	('1284', 'VG', 'British Virgin Islands'),
	('1340', 'VI', 'US Virgin Islands'),
	('1345', 'KY', 'Cayman Islands'),
	('1441', 'BM', 'Bermuda'),
	('1473', 'GD', 'Grenada'),
	('1649', 'TC', 'Turks and Caicos Islands'),
	('1658', 'JM', 'Jamaica'),
	('1664', 'MS', 'Montserrat'),
	('1670', 'MP', 'Northern Mariana Islands'),
	('1671', 'GU', 'Guam'),
	('1684', 'AS', 'American Samoa'),
	('1721', 'SX', 'Sint Maarten'),
	('1758', 'LC', 'Saint Lucia'),
	('1767', 'DM', 'Dominica'),
	('1784', 'VC', 'Saint Vincent and the Grenadines'),
	('1787', 'PR', 'Puerto Rico'),
	('1809', 'DO', 'Dominican Republic'),
	('1829', 'DO', 'Dominican Republic'),
	('1849', 'DO', 'Dominican Republic'),
	('1868', 'TT', 'Trinidad and Tobago'),
	('1869', 'KN', 'Saint Kitts and Nevis'),
	('1876', 'JM', 'Jamaica'),
	('1939', 'PR', 'Puerto Rico'),
	('20', 'EG', 'Egypt'),
	('211', 'SS', 'South Sudan'),
	('212', 'MA', 'Morocco'),
	('213', 'DZ', 'Algeria'),
	('216', 'TN', 'Tunisia'),
	('218', 'LY', 'Libya'),
	('220', 'GM', 'Gambia'),
	('221', 'SN', 'Senegal'),
	('222', 'MR', 'Mauritania'),
	('223', 'ML', 'Mali'),
	('224', 'GN', 'Guinea'),
	('225', 'CI', 'Cote d''Ivoire'),
	('226', 'BF', 'Burkina Faso'),
	('227', 'NE', 'Niger'),
	('228', 'TG', 'Togo'),
	('229', 'BJ', 'Benin'),
	('230', 'MU', 'Mauritius'),
	('231', 'LR', 'Liberia'),
	('232', 'SL', 'Sierra Leone'),
	('233', 'GH', 'Ghana'),
	('234', 'NG', 'Nigeria'),
	('235', 'TD', 'Chad'),
	('236', 'CF', 'Central African Republic'),
	('237', 'CM', 'Cameroon'),
	('238', 'CV', 'Cabo Verde'),
	('239', 'ST', 'Sao Tome and Principe'),
	('240', 'GQ', 'Equatorial Guinea'),
	('241', 'GA', 'Gabon'),
	('242', 'CG', 'Congo'),
	('243', 'CD', 'Congo (Democratic Republic)'),
	('244', 'AO', 'Angola'),
	('245', 'GW', 'Guinea-Bissau'),
	('246', 'IO', 'Diego Garcia'),
	('247', 'AC', 'Ascension'),
	('248', 'SC', 'Seychelles'),
	('249', 'SD', 'Sudan'),
	('250', 'RW', 'Rwanda'),
	('251', 'ET', 'Ethiopia'),
	('252', 'SO', 'Somalia'),
	('253', 'DJ', 'Djibouti'),
	('254', 'KE', 'Kenya'),
	('255', 'TZ', 'Tanzania'),
	('256', 'UG', 'Uganda'),
	('257', 'BI', 'Burundi'),
	('258', 'MZ', 'Mozambique'),
	('260', 'ZM', 'Zambia'),
	('261', 'MG', 'Madagascar'),
	('262', 'RE', 'Reunion and Mayotte'),
	('263', 'ZW', 'Zimbabwe'),
	('264', 'NA', 'Namibia'),
	('265', 'MW', 'Malawi'),
	('266', 'LS', 'Lesotho'),
	('267', 'BW', 'Botswana'),
	('268', 'SZ', 'Eswatini'),
	('269', 'KM', 'Comoros'),
	('27', 'ZA', 'South Africa'),
	('290', 'SH', 'Saint Helena, Tristan da Cunha'),
	('291', 'ER', 'Eritrea'),
	('297', 'AW', 'Aruba'),
	('298', 'FO', 'Faroe Islands'),
	('299', 'GL', 'Greenland'),
	('30', 'GR', 'Greece'),
	('31', 'NL', 'Netherlands'),
	('32', 'BE', 'Belgium'),
	('33', 'FR', 'France'),
	('34', 'ES', 'Spain'),
	('350', 'GI', 'Gibraltar'),
	('351', 'PT', 'Portugal'),
	('352', 'LU', 'Luxembourg'),
	('353', 'IE', 'Ireland'),
	('354', 'IS', 'Iceland'),
	('355', 'AL', 'Albania'),
	('356', 'MT', 'Malta'),
	('357', 'CY', 'Cyprus'),
	('358', 'FI', 'Finland'),
	('359', 'BG', 'Bulgaria'),
	('36', 'HU', 'Hungary'),
	('370', 'LT', 'Lithuania'),
	('371', 'LV', 'Latvia'),
	('372', 'EE', 'Estonia'),
	('373', 'MD', 'Moldova'),
	('374', 'AM', 'Armenia'),
	('375', 'BY', 'Belarus'),
	('376', 'AD', 'Andorra'),
	('377', 'MC', 'Monaco'),
	('378', 'SM', 'San Marino'),
	('379', 'VA', 'Vatican City'),
	('380', 'UA', 'Ukraine'),
	('381', 'RS', 'Serbia'),
	('382', 'ME', 'Montenegro'),
	('383', 'XK', 'Kosovo'),
	('385', 'HR', 'Croatia'),
	('386', 'SI', 'Slovenia'),
	('387', 'BA', 'Bosnia and Herzegovina'),
	('388', 'EU', 'European Telephony Numbering Space (reserved)'),
	('389', 'MK', 'North Macedonia'),
	('39', 'IT', 'Italy'),
	('40', 'RO', 'Romania'),
	('41', 'CH', 'Switzerland'),
	('420', 'CZ', 'Czech Republic'),
	('421', 'SK', 'Slovakia'),
	('423', 'LI', 'Liechtenstein'),
	('43', 'AT', 'Austria'),
	('44', 'GB', 'United Kingdom'),
	('45', 'DK', 'Denmark'),
	('46', 'SE', 'Sweden'),
	('47', 'NO', 'Norway'),
	('48', 'PL', 'Poland'),
	('49', 'DE', 'Germany'),
	('500', 'FK', 'Falkland Islands'),
	('501', 'BZ', 'Belize'),
	('502', 'GT', 'Guatemala'),
	('503', 'SV', 'El Salvador'),
	('504', 'HN', 'Honduras'),
	('505', 'NI', 'Nicaragua'),
	('506', 'CR', 'Costa Rica'),
	('507', 'PA', 'Panama'),
	('508', 'PM', 'Saint Pierre and Miquelon'),
	('509', 'HT', 'Haiti'),
	('51', 'PE', 'Peru'),
	('52', 'MX', 'Mexico'),
	('53', 'CU', 'Cuba'),
	('54', 'AR', 'Argentina'),
	('55', 'BR', 'Brazil'),
	('56', 'CL', 'Chile'),
	('57', 'CO', 'Colombia'),
	('58', 'VE', 'Venezuela'),
	('590', 'GP', 'Guadeloupe, Saint Barthelemy, Saint Martin'),
	('591', 'BO', 'Bolivia'),
	('592', 'GY', 'Guyana'),
	('593', 'EC', 'Ecuador'),
	('594', 'GF', 'French Guiana'),
	('595', 'PY', 'Paraguay'),
	('596', 'MQ', 'Martinique'),
	('597', 'SR', 'Suriname'),
	('598', 'UY', 'Uruguay'),
	('599', 'CW', 'Curacao, Caribbean Netherlands'),
	('60', 'MY', 'Malaysia'),
	('61', 'AU', 'Australia'),
	('62', 'ID', 'Indonesia'),
	('63', 'PH', 'Philippines'),
	('64', 'NZ', 'New Zealand'),
	('65', 'SG', 'Singapore'),
	('66', 'TH', 'Thailand'),
	('670', 'TL', 'Timor-Leste'),
	('672', 'NF', 'Norfolk Island, Australian Antarctic'),
	('673', 'BN', 'Brunei'),
	('674', 'NR', 'Nauru'),
	('675', 'PG', 'Papua New Guinea'),
	('676', 'TO', 'Tonga'),
	('677', 'SB', 'Solomon Islands'),
	('678', 'VU', 'Vanuatu'),
	('679', 'FJ', 'Fiji'),
	('680', 'PW', 'Palau'),
	('681', 'WF', 'Wallis and Futuna'),
	('682', 'CK', 'Cook Islands'),
	('683', 'NU', 'Niue'),
	('685', 'WS', 'Samoa'),
	('686', 'KI', 'Kiribati'),
	('687', 'NC', 'New Caledonia'),
	('688', 'TV', 'Tuvalu'),
	('689', 'PF', 'French Polynesia'),
	('690', 'TK', 'Tokelau'),
	('691', 'FM', 'Micronesia'),
	('692', 'MH', 'Marshall Islands'),
	('7', 'RU', 'Russia, Kazakhstan'),
	('76', 'KZ', 'Kazakhstan'),
	('77', 'KZ', 'Kazakhstan'),
	('800', 'XT', 'International Freephone (UIFN)'),
	('808', 'XS', 'International Shared Cost Service'),
	('81', 'JP', 'Japan'),
	('82', 'KR', 'South Korea'),
	('84', 'VN', 'Vietnam'),
	('850', 'KP', 'North Korea'),
	('852', 'HK', 'Hong Kong'),
	('853', 'MO', 'Macao'),
	('855', 'KH', 'Cambodia'),
	('856', 'LA', 'Laos'),
	('86', 'CN', 'China'),
	('870', 'XN', 'Inmarsat SNAC'),
	('878', 'XP', 'Universal Personal Telecommunications'),
	('880', 'BD', 'Bangladesh'),
	('881', 'XG', 'Global Mobile Satellite System (GMSS)'),
	('882', 'XV', 'International Networks'),
	('883', 'XV', 'International Networks'),
	('886', 'TW', 'Taiwan'),
	('888', 'XO', 'Telecommunications for Disaster Relief (OCHA)'),
	('90', 'TR', 'Turkey'),
	('91', 'IN', 'India'),
	('92', 'PK', 'Pakistan'),
	('93', 'AF', 'Afghanistan'),
	('94', 'LK', 'Sri Lanka'),
	('95', 'MM', 'Myanmar'),
	('960', 'MV', 'Maldives'),
	('961', 'LB', 'Lebanon'),
	('962', 'JO', 'Jordan'),
	('963', 'SY', 'Syria'),
	('964', 'IQ', 'Iraq'),
	('965', 'KW', 'Kuwait'),
	('966', 'SA', 'Saudi Arabia'),
	('967', 'YE', 'Yemen'),
	('968', 'OM', 'Oman'),
	('970', 'PS', 'Palestine'),
	('971', 'AE', 'United Arab Emirates'),
	('972', 'IL', 'Israel'),
	('973', 'BH', 'Bahrain'),
	('974', 'QA', 'Qatar'),
	('975', 'BT', 'Bhutan'),
	('976', 'MN', 'Mongolia'),
	('977', 'NP', 'Nepal'),
	('979', 'XR', 'International Premium Rate Service (IPRS)'),
	('98', 'IR', 'Iran'),
	('991', 'XC', 'International Telecommunications Public Correspondence Service trial (ITPCS)'),
	('992', 'TJ', 'Tajikistan'),
	('993', 'TM', 'Turkmenistan'),
	('994', 'AZ', 'Azerbaijan'),
	('995', 'GE', 'Georgia'),
	('996', 'KG', 'Kyrgyzstan'),
	('998', 'UZ', 'Uzbekistan');

-- Global settings (fraud.outbound_contexts, fraud.inbound_contexts,
-- fraud.max_call_duration): name -> JSON value.
CREATE TABLE fraud_setting (
	name   text PRIMARY KEY,
	value  jsonb NOT NULL
);

-- One row per rule, fraud and threshold alike.  params: the kind's settings
-- (JSON object, keys as in the YAML).  snooze: alerts for the same (rule,
-- tenant, subject) closer than this (in call time) fold into one.
CREATE TABLE fraud_rule (
	name      text PRIMARY KEY,
	kind      text NOT NULL CHECK (kind IN ('hotlist', 'new_country', 'out_of_hours', 'concurrent_intl', 'cps',
			'short_calls', 'sequential', 'cost_velocity', 'wangiri', 'allowance', 'tenant_concurrent',
			'tenant_cps', 'endpoint_unreachable', 'endpoint_recovered')),
	enabled   boolean NOT NULL DEFAULT true,
	severity  text NOT NULL CHECK (severity IN ('info', 'warning', 'minor', 'major', 'critical')),
	params    jsonb NOT NULL DEFAULT '{}',
	snooze    interval NOT NULL DEFAULT '1 hour'
);

-- Per-tenant limits of the threshold alerts; tenant '*' is the default for
-- tenants without a row.  NULL = no limit.
CREATE TABLE fraud_tenant_limit (
	tenant             text PRIMARY KEY,
	allowance_minutes  numeric CHECK (allowance_minutes > 0),
	max_concurrent     integer CHECK (max_concurrent >= 0),
	max_cps            integer CHECK (max_cps >= 0)
);

-- The alerts.  Written by the rules, drained by delivery: a row is pending
-- while delivered_at IS NULL, so nothing is lost while delivery is down.
-- evidence: the call ids (linkedid, = call.call_id for ordinary calls) of
-- the attempts that made the rule fire, or node:seq of AMI events for the
-- endpoint alerts.  hits: how many firings were folded into this row.
CREATE TABLE alert (
	id                 bigserial PRIMARY KEY,
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now(),
	rule               text NOT NULL,
	kind               text NOT NULL,
	tenant             text NOT NULL DEFAULT '',
	severity           text NOT NULL,
	subject            text NOT NULL,
	window_start       timestamptz NOT NULL,
	window_end         timestamptz NOT NULL,
	evidence           text[] NOT NULL DEFAULT '{}',
	hits               integer NOT NULL DEFAULT 1,
	details            jsonb NOT NULL DEFAULT '{}',
	delivered_at       timestamptz,
	delivery_attempts  integer NOT NULL DEFAULT 0,
	last_error         text
);
CREATE INDEX alert_key_idx ON alert (rule, tenant, subject, window_end DESC);
CREATE INDEX alert_pending_idx ON alert (id) WHERE delivered_at IS NULL;
CREATE INDEX alert_created_idx ON alert (created_at);

-- Countries each tenant has dialled (new_country rule).
CREATE TABLE fraud_tenant_country (
	tenant      text NOT NULL,
	country     text NOT NULL,
	first_seen  timestamptz NOT NULL,
	first_call  text NOT NULL,
	PRIMARY KEY (tenant, country)
);

-- Billable outbound seconds per tenant and calendar month (allowance).
CREATE TABLE fraud_usage (
	tenant   text NOT NULL,
	period   text NOT NULL,          -- YYYY-MM in alerts.allowance.timezone
	billsec  bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant, period)
);

-- Endpoint and trunk state: one row per change of state (repeats of the
-- same state are not stored).  kind: peer (PeerStatus), contact
-- (ContactStatus), registry (Registry), device (DeviceStateChange).
CREATE TABLE endpoint_state_history (
	id          bigserial PRIMARY KEY,
	node        text NOT NULL,
	kind        text NOT NULL,
	endpoint    text NOT NULL,
	detail      text NOT NULL DEFAULT '',   -- contact URI; '' otherwise
	state       text NOT NULL,
	reachable   boolean,                    -- NULL: the state says nothing about it
	prev_state  text,
	eventtime   timestamptz NOT NULL,
	seq         bigint NOT NULL,
	fields      jsonb NOT NULL
);
CREATE INDEX endpoint_state_history_key_idx ON endpoint_state_history (node, kind, endpoint, detail, eventtime DESC, seq DESC);
CREATE INDEX endpoint_state_history_time_idx ON endpoint_state_history (eventtime);

CREATE VIEW endpoint_state_current AS
	SELECT DISTINCT ON (node, kind, endpoint, detail)
	       node, kind, endpoint, detail, state, reachable, eventtime AS since, seq
	FROM endpoint_state_history
	ORDER BY node, kind, endpoint, detail, eventtime DESC, seq DESC;

-- ------------------------------------------------------------ helpers

-- A dialled/calling number as E.164 ('+' and digits) when it is written
-- internationally (leading + or 00), else NULL.  Spaces, dots, dashes and
-- parentheses are ignored; 3..15 digits.
CREATE FUNCTION fraud_e164(num text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN d ~ '^[1-9][0-9]{2,14}$' THEN '+' || d END
	FROM (SELECT CASE WHEN s LIKE '+%' THEN substr(s, 2) WHEN s LIKE '00%' THEN substr(s, 3) END AS d
	      FROM (SELECT regexp_replace(coalesce(num, ''), '[[:space:]().-]', '', 'g') AS s) a) b
$$;

-- The country code of an E.164 number: the longest prefix in country_code.
CREATE FUNCTION fraud_cc(e164 text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT c.prefix FROM country_code c
	WHERE e164 LIKE '+%' AND c.prefix IN (substr(e164, 2, 1), substr(e164, 2, 2), substr(e164, 2, 3), substr(e164, 2, 4))
	ORDER BY length(c.prefix) DESC LIMIT 1
$$;

-- A channel's device: SIP/loop-00000012 -> SIP/loop, Local/x@ctx-0000006e;2 -> Local/x@ctx.
CREATE FUNCTION fraud_device(channel text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(regexp_replace(coalesce(channel, ''), '-[0-9a-fA-F]+(;[0-9]+)?$', ''), '')
$$;

CREATE FUNCTION fraud_setting_list(p_name text) RETURNS text[]
LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT array_agg(x) FROM fraud_setting s, jsonb_array_elements_text(s.value) x
			 WHERE s.name = p_name AND jsonb_typeof(s.value) = 'array'), '{}')
$$;

-- A leg's direction from its dcontext: 'in' for fraud.inbound_contexts,
-- 'out' for fraud.outbound_contexts (every other context when that list is
-- empty), NULL for the rest.
CREATE FUNCTION fraud_dir(dcontext text, outb text[], inb text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN dcontext = ANY (inb) THEN 'in'
		    WHEN cardinality(outb) = 0 OR dcontext = ANY (outb) THEN 'out' END
$$;

-- The limit of a tenant (its row, else the '*' row), NULL = none.
CREATE FUNCTION fraud_tenant_limit_value(p_tenant text, p_what text) RETURNS numeric
LANGUAGE sql STABLE AS $$
	SELECT CASE p_what WHEN 'allowance_minutes' THEN l.allowance_minutes
			   WHEN 'max_concurrent' THEN l.max_concurrent
			   WHEN 'max_cps' THEN l.max_cps END
	FROM fraud_tenant_limit l WHERE l.tenant IN (p_tenant, '*')
	ORDER BY l.tenant = '*' LIMIT 1
$$;

-- Is ts inside business hours?  params: timezone, start, end (HH:MM, end
-- may be before start for a night shift), days (ISO 1=Mon..7=Sun),
-- holidays (local dates, all day out of hours).
CREATE FUNCTION fraud_in_hours(ts timestamptz, p jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT extract(isodow FROM l)::int = ANY (days)
	       AND NOT (to_char(l, 'YYYY-MM-DD') = ANY (hol))
	       AND CASE WHEN s < e THEN l::time >= s AND l::time < e ELSE l::time >= s OR l::time < e END
	FROM (SELECT ts AT TIME ZONE coalesce(p->>'timezone', 'UTC') AS l,
		     coalesce(p->>'start', '08:00')::time AS s, coalesce(p->>'end', '18:00')::time AS e,
		     coalesce((SELECT array_agg(d::int) FROM jsonb_array_elements_text(p->'days') d), '{1,2,3,4,5}') AS days,
		     coalesce((SELECT array_agg(d) FROM jsonb_array_elements_text(p->'holidays') d), '{}') AS hol) x
$$;

-- Replace the whole configuration (fraud_setting, fraud_rule,
-- fraud_tenant_limit) from the document etl/fraudcfg.c builds:
--   {"settings": {name: value}, "rules": [{name, kind, enabled, severity,
--    snooze_ms, params}], "tenant_limits": [{tenant, allowance_minutes,
--    max_concurrent, max_cps}]}
-- Returns the number of rules.  Time zones are checked here.
CREATE FUNCTION fraud_config_apply(cfg jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
	tz text;
BEGIN
	DELETE FROM fraud_setting;
	DELETE FROM fraud_rule;
	DELETE FROM fraud_tenant_limit;
	INSERT INTO fraud_setting (name, value)
		SELECT key, value FROM jsonb_each(coalesce(cfg->'settings', '{}'));
	INSERT INTO fraud_rule (name, kind, enabled, severity, params, snooze)
		SELECT x->>'name', x->>'kind', coalesce((x->>'enabled')::boolean, true), x->>'severity',
		       coalesce(x->'params', '{}'), coalesce((x->>'snooze_ms')::bigint, 3600000) * interval '1 millisecond'
		FROM jsonb_array_elements(coalesce(cfg->'rules', '[]')) x;
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO fraud_tenant_limit (tenant, allowance_minutes, max_concurrent, max_cps)
		SELECT x->>'tenant', (x->>'allowance_minutes')::numeric, (x->>'max_concurrent')::integer,
		       (x->>'max_cps')::integer
		FROM jsonb_array_elements(coalesce(cfg->'tenant_limits', '[]')) x;
	FOR tz IN SELECT DISTINCT params->>'timezone' FROM fraud_rule WHERE params ? 'timezone' LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz) THEN
			RAISE EXCEPTION 'unknown time zone "%"', tz;
		END IF;
	END LOOP;
	RETURN n;
END $$;

-- ------------------------------------------------------------ attempts
--
-- The unit most rules count is the *attempt*: the legs of one conversation
-- (linkedid) towards one dialled number in one direction, so a Dial leg and
-- the Busy/Hangup leg after it are one attempt.  fraud_build_attempts()
-- fills the temporary table fraud_att with the attempts of this batch
-- (in_batch) and, for the sliding windows, every attempt of the recent
-- history in cdr that starts up to max(rule windows, max_call_duration)
-- before the batch's earliest leg: a window split across batches sees both
-- halves.  Tenant: cdr.tenant, NULL = ''.  Numbers: cdr.dst_e164 /
-- src_e164 when those columns exist, else dst/src, through fraud_e164().
-- Cost: cdr.sell_cost (micro-units) when it exists, else NULL.
CREATE FUNCTION fraud_build_attempts() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_lo timestamptz;
	v_hi timestamptz;
	v_back interval;
	v_fwd interval;
	v_outb text[] := fraud_setting_list('outbound_contexts');
	v_inb text[] := fraud_setting_list('inbound_contexts');
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
	CREATE TEMP TABLE fraud_att ON COMMIT DROP AS
	WITH legs AS (
		SELECT b.*, true AS in_batch FROM cdr_batch b
		UNION ALL
		SELECT l.*, false FROM cdr l
		WHERE v_lo IS NOT NULL AND l.calldate >= v_lo - v_back AND l.calldate <= v_hi + v_fwd
		  AND NOT EXISTS (SELECT 1 FROM cdr_batch b WHERE b.node = l.node AND b.uniqueid = l.uniqueid
				  AND b.calldate = l.calldate AND b.sequence IS NOT DISTINCT FROM l.sequence
				  AND b.channel = l.channel AND b.lastapp = l.lastapp)
	), d AS (
		SELECT x.*, fraud_dir(x.dcontext, v_outb, v_inb) AS dir, to_jsonb(x) AS j FROM legs x
	), g AS (
		SELECT d.node, d.linkedid, d.dst, d.dir,
		       max(coalesce(d.tenant, '')) AS tenant,
		       min(d.src) AS src,
		       max(CASE WHEN d.dir = 'out' THEN fraud_device(nullif(d.dstchannel, ''))
				ELSE fraud_device(d.channel) END) AS trunk,
		       min(d.calldate) AS start, max(d."end") AS "end",
		       max(d.billsec) AS billsec, max(d.duration) AS duration,
		       bool_or(d.disposition = 'ANSWERED') AS answered,
		       round(sum((d.j->>'sell_cost')::numeric) / 1000000, 6) AS cost,
		       bool_or(d.in_batch) AS in_batch,
		       coalesce(fraud_e164(max(d.j->>'dst_e164')), fraud_e164(d.dst)) AS dst_e164,
		       coalesce(fraud_e164(max(d.j->>'src_e164')), fraud_e164(min(d.src))) AS src_e164
		FROM d WHERE d.dir IS NOT NULL
		GROUP BY d.node, d.linkedid, d.dst, d.dir
	)
	SELECT g.*, c.prefix AS cc, coalesce(c.iso, CASE WHEN g.dst_e164 IS NOT NULL THEN 'unknown' END) AS country,
	       CASE WHEN coalesce(g.dst_e164, g.dst) ~ '^\+?[0-9]{1,30}$'
		    THEN ltrim(coalesce(g.dst_e164, g.dst), '+')::numeric END AS dst_num
	FROM g LEFT JOIN LATERAL (SELECT cc.prefix, cc.iso FROM country_code cc WHERE cc.prefix = fraud_cc(g.dst_e164)) c ON true;
	CREATE INDEX ON fraud_att (tenant, start);
	ANALYZE fraud_att;
END $$;

-- The subject of a rule that counts per extension, trunk or tenant.
CREATE FUNCTION fraud_subject_sql(p_per text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE coalesce(p_per, 'extension') WHEN 'extension' THEN 'a.src' WHEN 'trunk' THEN 'a.trunk'
	       WHEN 'tenant' THEN 'a.tenant' WHEN 'number' THEN 'a.dst_e164' END
$$;

-- Hits are collected here first, then fraud_raise() turns them into alerts.
CREATE FUNCTION fraud_hit_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF to_regclass('pg_temp.fraud_hit') IS NOT NULL THEN
		DROP TABLE pg_temp.fraud_hit;
	END IF;
	CREATE TEMP TABLE fraud_hit (
		rule text NOT NULL, tenant text NOT NULL, subject text NOT NULL,
		window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,
		evidence text[] NOT NULL, details jsonb NOT NULL
	) ON COMMIT DROP;
END $$;

-- Sliding window over attempt starts: for every attempt start t, the
-- attempts of the same (tenant, subject) that start in (t - window, t];
-- the rule fires when  measure <cmp> limit  for a window holding at least
-- one attempt of this batch.  One hit per (tenant, subject) and batch: the
-- window with the largest measure.  filter/subject/measure/limit are SQL
-- over fraud_att a (limit may use a.tenant).
CREATE FUNCTION fraud_window_hits(p_rule text, p_filter text, p_subject text, p_window interval,
				  p_measure text, p_cmp text, p_limit text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
		WITH fa AS (
			SELECT a.*, (%2$s)::text AS subj, (%5$s)::numeric AS lim FROM fraud_att a
			WHERE (%1$s) AND coalesce((%2$s)::text, '') <> ''
		), w AS (
			SELECT fa.tenant, fa.subj, fa.start AS t, fa.lim,
			       %3$s OVER win AS m, count(*) OVER win AS n, bool_or(fa.in_batch) OVER win AS nb
			FROM fa
			WINDOW win AS (PARTITION BY fa.tenant, fa.subj ORDER BY fa.start
				       RANGE BETWEEN $2 - interval '1 microsecond' PRECEDING AND CURRENT ROW)
		), best AS (
			SELECT DISTINCT ON (w.tenant, w.subj) w.* FROM w
			WHERE w.nb AND w.m %4$s w.lim
			ORDER BY w.tenant, w.subj, w.m DESC, w.t
		)
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT $1, b.tenant, b.subj, min(f.start), b.t, array_agg(DISTINCT f.linkedid ORDER BY f.linkedid),
		       jsonb_build_object('value', b.m, 'limit', b.lim, 'attempts', b.n,
					  'window_s', extract(epoch FROM $2))
		FROM best b JOIN fa f ON f.tenant = b.tenant AND f.subj = b.subj AND f.start > b.t - $2 AND f.start <= b.t
		GROUP BY b.tenant, b.subj, b.t, b.m, b.lim, b.n
	$q$, p_filter, p_subject, p_measure, p_cmp, p_limit) USING p_rule, p_window;
END $$;

-- Concurrency: the attempts of one (tenant, subject) in progress at the same
-- instant (start <= t < end), swept over start/end events; fires when the
-- count exceeds the limit at an instant covered by an attempt of this batch
-- (a peak is seen when the last attempt making it has ended and is loaded).
CREATE FUNCTION fraud_concurrency_hits(p_rule text, p_filter text, p_subject text, p_limit text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
		WITH fa AS (
			SELECT a.*, (%2$s)::text AS subj, (%3$s)::numeric AS lim FROM fraud_att a
			WHERE (%1$s) AND coalesce((%2$s)::text, '') <> '' AND a."end" > a.start
		), ev AS (
			SELECT tenant, subj, lim, start AS ts, 1 AS delta, CASE WHEN in_batch THEN 1 ELSE 0 END AS bd FROM fa
			UNION ALL
			SELECT tenant, subj, lim, "end", -1, CASE WHEN in_batch THEN -1 ELSE 0 END FROM fa
		), run AS (
			SELECT tenant, subj, lim, ts, delta,
			       sum(delta) OVER o AS n, sum(bd) OVER o AS nb
			FROM ev
			WINDOW o AS (PARTITION BY tenant, subj ORDER BY ts, delta ROWS UNBOUNDED PRECEDING)
		), best AS (
			SELECT DISTINCT ON (tenant, subj) * FROM run
			WHERE delta = 1 AND nb > 0 AND n > lim
			ORDER BY tenant, subj, n DESC, ts
		)
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT $1, b.tenant, b.subj, b.ts, min(f."end"), array_agg(DISTINCT f.linkedid ORDER BY f.linkedid),
		       jsonb_build_object('value', b.n, 'limit', b.lim, 'at', b.ts)
		FROM best b JOIN fa f ON f.tenant = b.tenant AND f.subj = b.subj AND f.start <= b.ts AND f."end" > b.ts
		GROUP BY b.tenant, b.subj, b.ts, b.n, b.lim
	$q$, p_filter, p_subject, p_limit) USING p_rule;
END $$;

CREATE FUNCTION fraud_window(r fraud_rule, p_default text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce((r.params->>'window_ms')::bigint * interval '1 millisecond', p_default::interval)
$$;

-- ------------------------------------------------------------ the rules
-- Each fraud_eval_<kind>(rule) adds rows to fraud_hit.

-- hotlist: every outbound attempt of this batch to a number starting with
-- one of params.prefixes (E.164 digits).  Subject: the dialled number.
CREATE FUNCTION fraud_eval_hotlist(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
	SELECT r.name, a.tenant, a.dst_e164, min(a.start), max(a."end"), array_agg(DISTINCT a.linkedid ORDER BY a.linkedid),
	       jsonb_build_object('prefix', max(p.prefix), 'country', max(a.country), 'attempts', count(*),
				  'answered', count(*) FILTER (WHERE a.answered), 'billsec', sum(a.billsec),
				  'src', array_agg(DISTINCT a.src))
	FROM fraud_att a
	JOIN LATERAL (SELECT x AS prefix FROM jsonb_array_elements_text(r.params->'prefixes') x
		      WHERE substr(a.dst_e164, 2) LIKE x || '%' ORDER BY length(x) DESC LIMIT 1) p ON true
	WHERE a.in_batch AND a.dir = 'out' AND a.dst_e164 IS NOT NULL
	GROUP BY a.tenant, a.dst_e164
$$;

-- new_country: an outbound international attempt to a country the tenant
-- had never dialled before this batch (fraud_tenant_country).  Subject: the
-- ISO code (country_code.iso; 'unknown' for an unassigned code).
CREATE FUNCTION fraud_eval_new_country(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
	SELECT r.name, a.tenant, a.country, min(a.start), max(a."end"), array_agg(DISTINCT a.linkedid ORDER BY a.linkedid),
	       jsonb_build_object('country_code', max(a.cc), 'numbers', array_agg(DISTINCT a.dst_e164), 'attempts', count(*))
	FROM fraud_att a
	WHERE a.in_batch AND a.dir = 'out' AND a.dst_e164 IS NOT NULL
	  AND NOT (a.country = ANY (coalesce((SELECT array_agg(x) FROM jsonb_array_elements_text(r.params->'exclude') x), '{}')))
	  AND NOT EXISTS (SELECT 1 FROM fraud_tenant_country t WHERE t.tenant = a.tenant AND t.country = a.country)
	GROUP BY a.tenant, a.country
$$;

-- out_of_hours: outbound international attempts of this batch starting
-- outside business hours (fraud_in_hours).  Subject per params.per.
CREATE FUNCTION fraud_eval_out_of_hours(r fraud_rule) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($q$
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT $1, a.tenant, (%1$s)::text, min(a.start), max(a."end"), array_agg(DISTINCT a.linkedid ORDER BY a.linkedid),
		       jsonb_build_object('attempts', count(*), 'numbers', array_agg(DISTINCT a.dst_e164),
					  'timezone', coalesce($2->>'timezone', 'UTC'))
		FROM fraud_att a
		WHERE a.in_batch AND a.dir = 'out' AND a.dst_e164 IS NOT NULL AND coalesce((%1$s)::text, '') <> ''
		  AND NOT fraud_in_hours(a.start, $2)
		GROUP BY a.tenant, (%1$s)::text
	$q$, fraud_subject_sql(r.params->>'per')) USING r.name, r.params;
END $$;

-- concurrent_intl: more than params.max outbound international attempts in
-- progress at once per params.per (extension, trunk or tenant).
CREATE FUNCTION fraud_eval_concurrent_intl(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_concurrency_hits(r.name, $f$a.dir = 'out' AND a.dst_e164 IS NOT NULL$f$,
				      fraud_subject_sql(r.params->>'per'), quote_literal(r.params->>'max'))
$$;

-- cps: more than params.max attempts starting within one window (default
-- 1 s) per params.per; params.direction outbound, inbound or any.
CREATE FUNCTION fraud_eval_cps(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_window_hits(r.name,
		CASE coalesce(r.params->>'direction', 'outbound') WHEN 'outbound' THEN $f$a.dir = 'out'$f$
		     WHEN 'inbound' THEN $f$a.dir = 'in'$f$ ELSE 'true' END,
		fraud_subject_sql(coalesce(r.params->>'per', 'trunk')), fraud_window(r, '1 second'),
		'count(*)', '>', quote_literal(r.params->>'max'))
$$;

-- short_calls: at least params.count outbound attempts with billsec <
-- params.max_billsec within the window (answered ones only unless
-- answered_only is false).
CREATE FUNCTION fraud_eval_short_calls(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_window_hits(r.name,
		format($f$a.dir = 'out' AND a.billsec < %s %s$f$, (coalesce(r.params->>'max_billsec', '6'))::int,
		       CASE WHEN coalesce((r.params->>'answered_only')::boolean, true) THEN 'AND a.answered' ELSE '' END),
		fraud_subject_sql(r.params->>'per'), fraud_window(r, '5 minutes'),
		'count(*)', '>=', quote_literal(coalesce(r.params->>'count', '10')))
$$;

-- cost_velocity: the sell cost (currency units) of the attempts starting in
-- the window (default 1 h) per params.per (default tenant) above
-- params.max.  Needs cdr.sell_cost; without it the sums are NULL and the
-- rule never fires.
CREATE FUNCTION fraud_eval_cost_velocity(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_window_hits(r.name, $f$a.dir = 'out' AND a.cost IS NOT NULL$f$,
		fraud_subject_sql(coalesce(r.params->>'per', 'tenant')), fraud_window(r, '1 hour'),
		'sum(fa.cost)', '>', quote_literal(r.params->>'max'))
$$;

-- sequential: at least params.count distinct dialled numbers n, n+step,
-- n+2*step ... by one subject, all starting within one window.
CREATE FUNCTION fraud_eval_sequential(r fraud_rule) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_win interval := fraud_window(r, '10 minutes');
	v_step numeric := coalesce((r.params->>'step')::numeric, 1);
	v_count integer := coalesce((r.params->>'count')::integer, 5);
BEGIN
	EXECUTE format($q$
		WITH fa AS (
			SELECT a.*, (%1$s)::text AS subj FROM fraud_att a
			WHERE a.dir = 'out' AND a.dst_num IS NOT NULL AND coalesce((%1$s)::text, '') <> ''
		), anchor AS (
			SELECT DISTINCT x.tenant, x.subj, x.start AS t FROM fa x
			WHERE EXISTS (SELECT 1 FROM fa y WHERE y.in_batch AND y.tenant = x.tenant AND y.subj = x.subj
				      AND y.start > x.start - $2 AND y.start <= x.start)
		), inwin AS (
			SELECT an.tenant, an.subj, an.t, f.dst_num, f.linkedid, f.start, f.in_batch, f.dst_e164, f.dst,
			       f.dst_num - $3 * dense_rank() OVER (PARTITION BY an.tenant, an.subj, an.t ORDER BY f.dst_num) AS k
			FROM anchor an JOIN fa f ON f.tenant = an.tenant AND f.subj = an.subj
						AND f.start > an.t - $2 AND f.start <= an.t
		), runs AS (
			SELECT tenant, subj, t, k, count(DISTINCT dst_num) AS n, bool_or(in_batch) AS nb,
			       min(start) AS ws, array_agg(DISTINCT linkedid ORDER BY linkedid) AS ev,
			       min(coalesce(dst_e164, dst)) AS first_number, max(coalesce(dst_e164, dst)) AS last_number
			FROM inwin GROUP BY tenant, subj, t, k
		)
		INSERT INTO fraud_hit (rule, tenant, subject, window_start, window_end, evidence, details)
		SELECT DISTINCT ON (tenant, subj) $1, tenant, subj, ws, t, ev,
		       jsonb_build_object('run', n, 'from', first_number, 'to', last_number, 'step', $3)
		FROM runs WHERE nb AND n >= $4
		ORDER BY tenant, subj, n DESC, t
	$q$, fraud_subject_sql(r.params->>'per')) USING r.name, v_win, v_step, v_count;
END $$;

-- wangiri: inbound attempts from an international number, not answered,
-- ringing at most params.max_ring seconds (duration), from one A-number
-- prefix (first params.prefix_digits digits; 0 = the whole number)
-- reaching at least params.count distinct called numbers within the
-- window (default 10 min).  Tenant: the called leg's.  Subject: +prefix.
CREATE FUNCTION fraud_eval_wangiri(r fraud_rule) RETURNS void
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
		WHERE a.dir = 'in' AND a.src_e164 IS NOT NULL AND NOT a.answered AND a.duration <= v_ring
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

-- ------------------------------------------------------------ thresholds

-- tenant_concurrent: a tenant's attempts (in and out) in progress at once
-- above fraud_tenant_limit.max_concurrent.
CREATE FUNCTION fraud_eval_tenant_concurrent(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_concurrency_hits(r.name, 'true', 'a.tenant',
				      $l$fraud_tenant_limit_value(a.tenant, 'max_concurrent')$l$)
$$;

-- tenant_cps: a tenant's attempts (in and out) starting within one window
-- (default 1 s) above fraud_tenant_limit.max_cps.
CREATE FUNCTION fraud_eval_tenant_cps(r fraud_rule) RETURNS void
LANGUAGE sql AS $$
	SELECT fraud_window_hits(r.name, 'true', 'a.tenant', fraud_window(r, '1 second'), 'count(*)', '>',
				 $l$fraud_tenant_limit_value(a.tenant, 'max_cps')$l$)
$$;

-- Usage of this batch: billable legs are outbound legs that reached a far
-- channel (dstchannel not empty); their billsec is added to fraud_usage for
-- the month of their start (allowance rule's timezone, default UTC).  The
-- allowance rule fires once per level and month, in the batch whose legs
-- take the usage across level% of allowance_minutes.
CREATE FUNCTION fraud_usage_step() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r fraud_rule;
	v_outb text[] := fraud_setting_list('outbound_contexts');
	v_inb text[] := fraud_setting_list('inbound_contexts');
BEGIN
	SELECT * INTO r FROM fraud_rule WHERE kind = 'allowance' ORDER BY name LIMIT 1;
	CREATE TEMP TABLE fraud_usage_delta ON COMMIT DROP AS
		SELECT coalesce(b.tenant, '') AS tenant,
		       to_char(b.calldate AT TIME ZONE coalesce(r.params->>'timezone', 'UTC'), 'YYYY-MM') AS period,
		       sum(b.billsec)::bigint AS add, array_agg(DISTINCT b.linkedid ORDER BY b.linkedid) AS ev,
		       min(b.calldate) AS ws, max(b."end") AS we
		FROM cdr_batch b
		WHERE fraud_dir(b.dcontext, v_outb, v_inb) = 'out' AND b.dstchannel <> '' AND b.billsec > 0
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

-- ------------------------------------------------------------ endpoint state

-- State events of this batch -> endpoint_state_history (changes only) and,
-- for the endpoint_unreachable / endpoint_recovered rules, hits on the
-- transitions of reachability: known-reachable or unknown -> unreachable,
-- unreachable -> reachable (the last known reachability before the event).
-- Reachable: PeerStatus Reachable/Registered/Lagged, ContactStatus
-- Reachable/Created/Updated/NonQualified, Registry Registered, a device
-- state other than UNAVAILABLE/INVALID/UNKNOWN.  Unreachable: PeerStatus
-- Unreachable/Unregistered/Rejected, ContactStatus Unreachable/Removed,
-- Registry Rejected/Failed/Unregistered/Timeout/No Authentication, device
-- UNAVAILABLE.  Local/ devices (dialplan, not endpoints) get history only.
CREATE FUNCTION fraud_state_step(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	e record;
	v_prev text;
	v_known boolean;
	ru fraud_rule;
	rr fraud_rule;
BEGIN
	SELECT * INTO ru FROM fraud_rule WHERE kind = 'endpoint_unreachable' AND enabled ORDER BY name LIMIT 1;
	SELECT * INTO rr FROM fraud_rule WHERE kind = 'endpoint_recovered' AND enabled ORDER BY name LIMIT 1;
	FOR e IN
		WITH ev AS (
			SELECT a.node, a.eventtime, a.seq, a.fields,
			       CASE a.event WHEN 'PeerStatus' THEN 'peer' WHEN 'ContactStatus' THEN 'contact'
				    WHEN 'Registry' THEN 'registry' ELSE 'device' END AS kind,
			       CASE a.event WHEN 'PeerStatus' THEN a.fields->>'Peer'
				    WHEN 'ContactStatus' THEN coalesce('PJSIP/' || (a.fields->>'EndpointName'), a.fields->>'AOR')
				    WHEN 'Registry' THEN coalesce(a.fields->>'ChannelType', '') || '/' ||
					 coalesce(a.fields->>'Username' || '@', '') || coalesce(a.fields->>'Domain', '')
				    ELSE a.fields->>'Device' END AS endpoint,
			       CASE a.event WHEN 'ContactStatus' THEN coalesce(a.fields->>'URI', '') ELSE '' END AS detail,
			       CASE a.event WHEN 'PeerStatus' THEN a.fields->>'PeerStatus'
				    WHEN 'ContactStatus' THEN a.fields->>'ContactStatus'
				    WHEN 'Registry' THEN a.fields->>'Status' ELSE a.fields->>'State' END AS state
			FROM ami_event a
			WHERE a.node = p_node AND a.seq > p_seq_lo AND a.seq <= p_seq_hi
			  AND a.event IN ('PeerStatus', 'ContactStatus', 'Registry', 'DeviceStateChange')
		), ch AS (
			SELECT ev.*, lag(ev.state) OVER (PARTITION BY ev.kind, ev.endpoint, ev.detail ORDER BY ev.seq) AS batch_prev
			FROM ev WHERE ev.endpoint IS NOT NULL AND ev.state IS NOT NULL
		)
		SELECT ch.*,
		       CASE ch.kind
			    WHEN 'peer' THEN CASE WHEN ch.state IN ('Reachable', 'Registered', 'Lagged') THEN true
						  WHEN ch.state IN ('Unreachable', 'Unregistered', 'Rejected') THEN false END
			    WHEN 'contact' THEN CASE WHEN ch.state IN ('Reachable', 'Created', 'Updated', 'NonQualified') THEN true
						     WHEN ch.state IN ('Unreachable', 'Removed') THEN false END
			    WHEN 'registry' THEN CASE WHEN ch.state = 'Registered' THEN true
						      WHEN ch.state IN ('Rejected', 'Failed', 'Unregistered', 'Timeout',
									'No Authentication') THEN false END
			    ELSE CASE WHEN ch.state = 'UNAVAILABLE' THEN false
				      WHEN ch.state IN ('UNKNOWN', 'INVALID') THEN NULL ELSE true END
		       END AS reachable
		FROM ch WHERE ch.batch_prev IS DISTINCT FROM ch.state
		ORDER BY ch.seq
	LOOP
		SELECT h.state INTO v_prev FROM endpoint_state_history h
		WHERE h.node = e.node AND h.kind = e.kind AND h.endpoint = e.endpoint AND h.detail = e.detail
		ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1;
		IF v_prev IS NOT DISTINCT FROM e.state THEN
			CONTINUE;
		END IF;
		SELECT h.reachable INTO v_known FROM endpoint_state_history h
		WHERE h.node = e.node AND h.kind = e.kind AND h.endpoint = e.endpoint AND h.detail = e.detail
		  AND h.reachable IS NOT NULL
		ORDER BY h.eventtime DESC, h.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_known := NULL;
		END IF;
		INSERT INTO endpoint_state_history (node, kind, endpoint, detail, state, reachable, prev_state, eventtime, seq, fields)
		VALUES (e.node, e.kind, e.endpoint, e.detail, e.state, e.reachable, v_prev, e.eventtime, e.seq, e.fields);
		-- Local channels are dialplan, not endpoints: history only
		IF e.endpoint LIKE 'Local/%' THEN
			CONTINUE;
		END IF;
		IF e.reachable = false AND v_known IS DISTINCT FROM false AND ru.name IS NOT NULL
		   AND coalesce(ru.params->'sources', '["peer", "contact", "registry", "device"]') ? e.kind THEN
			INSERT INTO fraud_hit VALUES (ru.name, '', e.endpoint || CASE WHEN e.detail <> '' THEN ' ' || e.detail ELSE '' END,
				e.eventtime, e.eventtime, ARRAY[e.node || ':' || e.seq],
				jsonb_build_object('source', e.kind, 'state', e.state, 'previous', v_prev, 'node', e.node));
		ELSIF e.reachable AND v_known = false AND rr.name IS NOT NULL
		   AND coalesce(rr.params->'sources', '["peer", "contact", "registry", "device"]') ? e.kind THEN
			INSERT INTO fraud_hit VALUES (rr.name, '', e.endpoint || CASE WHEN e.detail <> '' THEN ' ' || e.detail ELSE '' END,
				e.eventtime, e.eventtime, ARRAY[e.node || ':' || e.seq],
				jsonb_build_object('source', e.kind, 'state', e.state, 'previous', v_prev, 'node', e.node,
					'down_since', (SELECT min(h.eventtime) FROM endpoint_state_history h
						       WHERE h.node = e.node AND h.kind = e.kind AND h.endpoint = e.endpoint
							 AND h.detail = e.detail AND h.seq < e.seq AND h.reachable = false
							 AND h.eventtime >= coalesce((SELECT max(h2.eventtime) FROM endpoint_state_history h2
									WHERE h2.node = e.node AND h2.kind = e.kind AND h2.endpoint = e.endpoint
									  AND h2.detail = e.detail AND h2.seq < e.seq AND h2.reachable),
									'-infinity'))));
		END IF;
	END LOOP;
END $$;

-- ------------------------------------------------------------ alerts

-- fraud_hit -> alert.  A hit for (rule, tenant, subject) whose window
-- starts no later than snooze after the window end of the newest alert
-- with that key (call time, not wall-clock: replays and backfills give the
-- same alerts) is folded into that alert: window widened, evidence merged
-- (at most 1000 ids), hits + 1, details replaced, delivered_at kept (a
-- folded repeat is not delivered again).  A hit that brings nothing new
-- (evidence and window already covered) changes nothing.  Else a new row.
CREATE FUNCTION fraud_raise() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	h record;
	a alert;
	n integer := 0;
BEGIN
	FOR h IN
		SELECT x.*, r.kind, r.severity, r.snooze FROM fraud_hit x JOIN fraud_rule r ON r.name = x.rule
		ORDER BY x.window_start, x.rule, x.tenant, x.subject
	LOOP
		SELECT * INTO a FROM alert
		WHERE rule = h.rule AND tenant = h.tenant AND subject = h.subject
		ORDER BY window_end DESC, id DESC LIMIT 1
		FOR UPDATE;
		IF FOUND AND h.window_start <= a.window_end + h.snooze THEN
			IF h.evidence <@ a.evidence AND h.window_start >= a.window_start AND h.window_end <= a.window_end THEN
				CONTINUE;
			END IF;
			UPDATE alert SET
				updated_at = now(),
				window_start = least(window_start, h.window_start),
				window_end = greatest(window_end, h.window_end),
				evidence = (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM
					    (SELECT DISTINCT x FROM unnest(a.evidence || h.evidence) x ORDER BY x LIMIT 1000) s),
				hits = hits + 1,
				details = h.details || jsonb_build_object('folded', true)
			WHERE id = a.id;
		ELSE
			INSERT INTO alert (rule, kind, tenant, severity, subject, window_start, window_end, evidence, details)
			VALUES (h.rule, h.kind, h.tenant, h.severity, h.subject, h.window_start, h.window_end,
				(SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM
				 (SELECT DISTINCT x FROM unnest(h.evidence) x ORDER BY x LIMIT 1000) s),
				h.details);
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

-- The analytics step.
CREATE FUNCTION fraud_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
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
		FROM fraud_att WHERE in_batch AND dir = 'out' AND dst_e164 IS NOT NULL
		ORDER BY tenant, country, start
		ON CONFLICT DO NOTHING;
	PERFORM fraud_usage_step();
	PERFORM fraud_state_step(p_node, p_seq_lo, p_seq_hi);
	PERFORM fraud_raise();
	DROP TABLE fraud_hit;
	DROP TABLE fraud_att;
END $$;

INSERT INTO analytics_step (fn, ord) VALUES ('fraud_after_batch', 40);

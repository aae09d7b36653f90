-- 0009_rollups_rls.sql - hourly/daily rollups, retention registry, row-level
-- security for per-tenant readers.  docs/metrics.md "## Rollups" and
-- "## Retention and access" define every column and rule used here.
--
-- Rollups.  rollup_hourly holds, per UTC hour x tenant x direction x
-- disposition x destination country x trunk, sums and counts only (never a
-- ratio), so adding a batch's deltas keeps it exact; ASR/ACD/avg MOS are
-- derived in the views.  A leg is rolled up once, in the batch that inserts
-- its call (the batch's call_batch rows): by then it has its call_id, its
-- call's direction, and whatever earlier analytics steps (tenant, rating,
-- QoS: lower ord) wrote on it.  So at any time, for legs whose call is in
-- the warehouse: rollup_hourly = the GROUP BY of rollup_leg_v (tested by
-- tests/t/t4400-rollups-retention-rls.sh).  rollup_daily is maintained from
-- the same deltas (UTC days) so month reports read at most 31 rows per key.

-- Columns other families add (0005 QoS, 0007 tenants/rating).  Created here
-- too, IF NOT EXISTS, so this migration works whether or not they are in.
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS direction text;
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS sell_cost bigint;
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS buy_cost bigint;
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS worst_mos numeric;
ALTER TABLE call ADD COLUMN IF NOT EXISTS worst_mos numeric;

-- E.164 country codes (ITU-T E.164 assignments).  ISO 3166-1 alpha-2 for
-- geographic codes; non-geographic codes get user-assigned X* codes
-- (XF freephone 800, XC shared cost 808, XI Inmarsat 870, XU UPT 878, XS
-- satellite GMSS 881, XN international networks 882/883, XO OCHA 888,
-- XP international premium rate 979, XT trial 991).  NANP (+1) defaults to
-- US; Canadian area codes and the other NANP countries are listed with
-- their 4-digit prefixes so the longest match wins.
CREATE TABLE rollup_country_code (
	prefix text PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,7}$'),
	iso    text NOT NULL,
	name   text NOT NULL
);
INSERT INTO rollup_country_code (prefix, iso, name) VALUES
('1','US','United States (NANP)'),
('1242','BS','Bahamas'),('1246','BB','Barbados'),('1264','AI','Anguilla'),('1268','AG','Antigua and Barbuda'),
('1284','VG','British Virgin Islands'),('1340','VI','US Virgin Islands'),('1345','KY','Cayman Islands'),
('1441','BM','Bermuda'),('1473','GD','Grenada'),('1649','TC','Turks and Caicos Islands'),('1658','JM','Jamaica'),
('1876','JM','Jamaica'),('1664','MS','Montserrat'),('1670','MP','Northern Mariana Islands'),('1671','GU','Guam'),
('1684','AS','American Samoa'),('1721','SX','Sint Maarten'),('1758','LC','Saint Lucia'),('1767','DM','Dominica'),
('1784','VC','Saint Vincent and the Grenadines'),('1787','PR','Puerto Rico'),('1939','PR','Puerto Rico'),
('1809','DO','Dominican Republic'),('1829','DO','Dominican Republic'),('1849','DO','Dominican Republic'),
('1868','TT','Trinidad and Tobago'),('1869','KN','Saint Kitts and Nevis'),
('1204','CA','Canada'),('1226','CA','Canada'),('1236','CA','Canada'),('1249','CA','Canada'),('1250','CA','Canada'),
('1263','CA','Canada'),('1289','CA','Canada'),('1306','CA','Canada'),('1343','CA','Canada'),('1354','CA','Canada'),
('1365','CA','Canada'),('1367','CA','Canada'),('1368','CA','Canada'),('1382','CA','Canada'),('1403','CA','Canada'),
('1416','CA','Canada'),('1418','CA','Canada'),('1428','CA','Canada'),('1431','CA','Canada'),('1437','CA','Canada'),
('1438','CA','Canada'),('1450','CA','Canada'),('1468','CA','Canada'),('1474','CA','Canada'),('1506','CA','Canada'),
('1514','CA','Canada'),('1519','CA','Canada'),('1548','CA','Canada'),('1579','CA','Canada'),('1581','CA','Canada'),
('1584','CA','Canada'),('1587','CA','Canada'),('1604','CA','Canada'),('1613','CA','Canada'),('1639','CA','Canada'),
('1647','CA','Canada'),('1672','CA','Canada'),('1683','CA','Canada'),('1705','CA','Canada'),('1709','CA','Canada'),
('1742','CA','Canada'),('1753','CA','Canada'),('1778','CA','Canada'),('1780','CA','Canada'),('1782','CA','Canada'),
('1807','CA','Canada'),('1819','CA','Canada'),('1825','CA','Canada'),('1867','CA','Canada'),('1873','CA','Canada'),
('1879','CA','Canada'),('1902','CA','Canada'),('1905','CA','Canada'),
('7','RU','Russia'),('76','KZ','Kazakhstan'),('77','KZ','Kazakhstan'),
('20','EG','Egypt'),('211','SS','South Sudan'),('212','MA','Morocco'),('213','DZ','Algeria'),('216','TN','Tunisia'),
('218','LY','Libya'),('220','GM','Gambia'),('221','SN','Senegal'),('222','MR','Mauritania'),('223','ML','Mali'),
('224','GN','Guinea'),('225','CI','Cote d''Ivoire'),('226','BF','Burkina Faso'),('227','NE','Niger'),('228','TG','Togo'),
('229','BJ','Benin'),('230','MU','Mauritius'),('231','LR','Liberia'),('232','SL','Sierra Leone'),('233','GH','Ghana'),
('234','NG','Nigeria'),('235','TD','Chad'),('236','CF','Central African Republic'),('237','CM','Cameroon'),
('238','CV','Cabo Verde'),('239','ST','Sao Tome and Principe'),('240','GQ','Equatorial Guinea'),('241','GA','Gabon'),
('242','CG','Congo'),('243','CD','DR Congo'),('244','AO','Angola'),('245','GW','Guinea-Bissau'),
('246','IO','Diego Garcia'),('247','AC','Ascension'),('248','SC','Seychelles'),('249','SD','Sudan'),('250','RW','Rwanda'),
('251','ET','Ethiopia'),('252','SO','Somalia'),('253','DJ','Djibouti'),('254','KE','Kenya'),('255','TZ','Tanzania'),
('256','UG','Uganda'),('257','BI','Burundi'),('258','MZ','Mozambique'),('260','ZM','Zambia'),('261','MG','Madagascar'),
('262','RE','Reunion'),('262269','YT','Mayotte'),('262639','YT','Mayotte'),('263','ZW','Zimbabwe'),('264','NA','Namibia'),
('265','MW','Malawi'),('266','LS','Lesotho'),('267','BW','Botswana'),('268','SZ','Eswatini'),('269','KM','Comoros'),
('27','ZA','South Africa'),('290','SH','Saint Helena'),('291','ER','Eritrea'),('297','AW','Aruba'),
('298','FO','Faroe Islands'),('299','GL','Greenland'),
('30','GR','Greece'),('31','NL','Netherlands'),('32','BE','Belgium'),('33','FR','France'),('34','ES','Spain'),
('350','GI','Gibraltar'),('351','PT','Portugal'),('352','LU','Luxembourg'),('353','IE','Ireland'),('354','IS','Iceland'),
('355','AL','Albania'),('356','MT','Malta'),('357','CY','Cyprus'),('358','FI','Finland'),('35818','AX','Aland Islands'),
('359','BG','Bulgaria'),('36','HU','Hungary'),('370','LT','Lithuania'),('371','LV','Latvia'),('372','EE','Estonia'),
('373','MD','Moldova'),('374','AM','Armenia'),('375','BY','Belarus'),('376','AD','Andorra'),('377','MC','Monaco'),
('378','SM','San Marino'),('379','VA','Vatican City'),('380','UA','Ukraine'),('381','RS','Serbia'),
('382','ME','Montenegro'),('383','XK','Kosovo'),('385','HR','Croatia'),('386','SI','Slovenia'),
('387','BA','Bosnia and Herzegovina'),('389','MK','North Macedonia'),('39','IT','Italy'),('40','RO','Romania'),
('41','CH','Switzerland'),('420','CZ','Czechia'),('421','SK','Slovakia'),('423','LI','Liechtenstein'),('43','AT','Austria'),
('44','GB','United Kingdom'),('441481','GG','Guernsey'),('441534','JE','Jersey'),('441624','IM','Isle of Man'),
('45','DK','Denmark'),('46','SE','Sweden'),('47','NO','Norway'),('48','PL','Poland'),('49','DE','Germany'),
('500','FK','Falkland Islands'),('501','BZ','Belize'),('502','GT','Guatemala'),('503','SV','El Salvador'),
('504','HN','Honduras'),('505','NI','Nicaragua'),('506','CR','Costa Rica'),('507','PA','Panama'),
('508','PM','Saint Pierre and Miquelon'),('509','HT','Haiti'),('51','PE','Peru'),('52','MX','Mexico'),('53','CU','Cuba'),
('54','AR','Argentina'),('55','BR','Brazil'),('56','CL','Chile'),('57','CO','Colombia'),('58','VE','Venezuela'),
('590','GP','Guadeloupe'),('591','BO','Bolivia'),('592','GY','Guyana'),('593','EC','Ecuador'),
('594','GF','French Guiana'),('595','PY','Paraguay'),('596','MQ','Martinique'),('597','SR','Suriname'),
('598','UY','Uruguay'),('599','CW','Curacao'),('5997','BQ','Caribbean Netherlands'),
('60','MY','Malaysia'),('61','AU','Australia'),('62','ID','Indonesia'),('63','PH','Philippines'),('64','NZ','New Zealand'),
('65','SG','Singapore'),('66','TH','Thailand'),('670','TL','Timor-Leste'),('672','NF','Norfolk Island'),
('673','BN','Brunei'),('674','NR','Nauru'),('675','PG','Papua New Guinea'),('676','TO','Tonga'),
('677','SB','Solomon Islands'),('678','VU','Vanuatu'),('679','FJ','Fiji'),('680','PW','Palau'),
('681','WF','Wallis and Futuna'),('682','CK','Cook Islands'),('683','NU','Niue'),('685','WS','Samoa'),
('686','KI','Kiribati'),('687','NC','New Caledonia'),('688','TV','Tuvalu'),('689','PF','French Polynesia'),
('690','TK','Tokelau'),('691','FM','Micronesia'),('692','MH','Marshall Islands'),
('800','XF','International Freephone'),('808','XC','International Shared Cost'),('81','JP','Japan'),
('82','KR','South Korea'),('84','VN','Vietnam'),('850','KP','North Korea'),('852','HK','Hong Kong'),('853','MO','Macao'),
('855','KH','Cambodia'),('856','LA','Laos'),('86','CN','China'),('870','XI','Inmarsat'),
('878','XU','Universal Personal Telecommunications'),('880','BD','Bangladesh'),('881','XS','Global Mobile Satellite System'),
('882','XN','International Networks'),('883','XN','International Networks'),('886','TW','Taiwan'),
('888','XO','OCHA'),
('90','TR','Turkey'),('91','IN','India'),('92','PK','Pakistan'),('93','AF','Afghanistan'),('94','LK','Sri Lanka'),
('95','MM','Myanmar'),('960','MV','Maldives'),('961','LB','Lebanon'),('962','JO','Jordan'),('963','SY','Syria'),
('964','IQ','Iraq'),('965','KW','Kuwait'),('966','SA','Saudi Arabia'),('967','YE','Yemen'),('968','OM','Oman'),
('970','PS','Palestine'),('971','AE','United Arab Emirates'),('972','IL','Israel'),('973','BH','Bahrain'),
('974','QA','Qatar'),('975','BT','Bhutan'),('976','MN','Mongolia'),('977','NP','Nepal'),
('979','XP','International Premium Rate'),('98','IR','Iran'),('991','XT','ITPCS trial'),('992','TJ','Tajikistan'),
('993','TM','Turkmenistan'),('994','AZ','Azerbaijan'),('995','GE','Georgia'),('996','KG','Kyrgyzstan'),
('998','UZ','Uzbekistan');

-- The international digits of a dialled number, or NULL when it is not in
-- international form: "+CC..." or "00CC..." (spaces, dashes, dots and
-- parentheses ignored), 4 to 15 digits after the prefix (E.164 maximum).
CREATE FUNCTION cdrflow_e164(number text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE WHEN d ~ '^\+[0-9]{4,15}$' THEN substr(d, 2)
		    WHEN d ~ '^00[1-9][0-9]{3,14}$' THEN substr(d, 3) END
	FROM (SELECT regexp_replace(number, '[ ().-]', '', 'g') AS d) n
$$;

-- Destination country (ISO code) of a dialled number: the longest prefix
-- of its international digits in rollup_country_code; NULL when the number
-- is not international or no prefix matches.
CREATE FUNCTION cdrflow_country(number text) RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
-- plpgsql, not sql: its plan is cached, 20 times faster per leg
DECLARE
	e text := cdrflow_e164(number);
	r text;
BEGIN
	IF e IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT c.iso INTO r FROM rollup_country_code c
	WHERE c.prefix IN (left(e, 1), left(e, 2), left(e, 3), left(e, 4), left(e, 5), left(e, 6), left(e, 7))
	ORDER BY length(c.prefix) DESC LIMIT 1;
	RETURN r;
END $$;

-- The endpoint part of a channel name: "SIP/loop-0000000f" -> "SIP/loop",
-- "PJSIP/carrier-00000a1b" -> "PJSIP/carrier" (a trailing "<ZOMBIE>"-style
-- tag and the "-<hex>" sequence, with an optional ";n" Local half, removed).
CREATE FUNCTION cdrflow_channel_peer(channel text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT regexp_replace(regexp_replace(channel, '<[^>]*>$', ''), '-[0-9a-fA-F]+(;[0-9]+)?$', '')
$$;

-- Direction of a leg: the leg's own direction when a step set one, else its
-- call's, else 'unknown'.
CREATE FUNCTION cdrflow_rollup_direction(leg_direction text, call_direction text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(nullif(nullif(leg_direction, ''), 'unknown'), nullif(call_direction, ''), 'unknown')
$$;

-- The trunk of a leg: the endpoint (cdrflow_channel_peer) of its first
-- non-Local side, looking at the far side (dstchannel) first, except for
-- inbound legs where the trunk is the calling side (channel) first.  ''
-- when both sides are Local channels or empty.
CREATE FUNCTION cdrflow_trunk(channel text, dstchannel text, direction text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(CASE WHEN direction = 'inbound' THEN coalesce(a, b) ELSE coalesce(b, a) END, '')
	FROM (SELECT CASE WHEN channel <> '' AND channel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(channel) END AS a,
		     CASE WHEN dstchannel <> '' AND dstchannel NOT LIKE 'Local/%' THEN cdrflow_channel_peer(dstchannel) END AS b) s
$$;

-- "calls" (metric calls_dial_legs): a leg counts as a call attempt when it
-- reached, or tried to reach, another party: it has a dstchannel, or its
-- last application was Dial or Queue (a Dial to an unavailable channel
-- leaves no dstchannel but is still a failed attempt).
CREATE FUNCTION cdrflow_is_dial_leg(dstchannel text, lastapp text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(dstchannel, '') <> '' OR coalesce(lastapp, '') IN ('Dial', 'Queue')
$$;

-- Every leg that belongs to a call, with its rollup keys: the definition the
-- rollups are the GROUP BY of.
CREATE VIEW rollup_leg_v WITH (security_invoker = true) AS
SELECT l.node, l.call_id, l.uniqueid, l.calldate,
       date_trunc('hour', l.calldate, 'UTC') AS hour,
       coalesce(l.tenant, '') AS tenant,
       d.direction,
       l.disposition,
       coalesce(cdrflow_country(l.dst), '') AS country,
       cdrflow_trunk(l.channel, l.dstchannel, d.direction) AS trunk,
       cdrflow_is_dial_leg(l.dstchannel, l.lastapp) AS is_call,
       l.billsec, l.duration, l.sell_cost, l.buy_cost,
       coalesce(l.worst_mos, k.worst_mos)::numeric AS mos
FROM cdr l
JOIN call k ON k.call_id = l.call_id AND k.node = l.node
CROSS JOIN LATERAL (SELECT cdrflow_rollup_direction(l.direction, k.direction) AS direction) d;

CREATE TABLE rollup_hourly (
	hour        timestamptz NOT NULL,   -- UTC hour of the legs' calldate
	tenant      text NOT NULL,          -- cdr.tenant, '' when NULL
	direction   text NOT NULL,          -- inbound, outbound, internal, unknown
	disposition text NOT NULL,          -- ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION
	country     text NOT NULL,          -- ISO code of dst, '' when not international/unknown
	trunk       text NOT NULL,          -- e.g. SIP/loop, '' when none
	legs        bigint NOT NULL,        -- every leg
	leg_billsec bigint NOT NULL,        -- sum of billsec over every leg (s)
	calls       bigint NOT NULL,        -- dial legs (calls_dial_legs)
	answered    bigint NOT NULL,        -- dial legs with disposition ANSWERED
	billsec     bigint NOT NULL,        -- sum of billsec of answered dial legs (s)
	duration    bigint NOT NULL,        -- sum of duration of dial legs (s)
	sell_cost   numeric NOT NULL,       -- sum of cdr.sell_cost over every leg (micro-units)
	buy_cost    numeric NOT NULL,       -- sum of cdr.buy_cost over every leg (micro-units)
	rated       bigint NOT NULL,        -- legs with a sell_cost or buy_cost
	mos_sum     numeric NOT NULL,       -- sum of the worst MOS of dial legs that have one
	mos_n       bigint NOT NULL,        -- dial legs with a worst MOS
	PRIMARY KEY (hour, tenant, direction, disposition, country, trunk)
);
CREATE INDEX rollup_hourly_tenant_idx ON rollup_hourly (tenant, hour);

CREATE TABLE rollup_daily (LIKE rollup_hourly INCLUDING DEFAULTS);
ALTER TABLE rollup_daily RENAME COLUMN hour TO day;
ALTER TABLE rollup_daily ADD PRIMARY KEY (day, tenant, direction, disposition, country, trunk);
CREATE INDEX rollup_daily_tenant_idx ON rollup_daily (tenant, day);

-- The analytics step: add this batch's calls' legs to both rollups.
CREATE FUNCTION rollup_after_batch(p_node text, p_seq_lo bigint, p_seq_hi bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM call_batch) THEN
		RETURN;
	END IF;
	-- one statement: d (this batch's calls' legs summed per key) is
	-- computed once and feeds both upserts
	WITH d AS (
		SELECT v.hour, v.tenant, v.direction, v.disposition, v.country, v.trunk,
		       count(*) AS legs, coalesce(sum(v.billsec), 0) AS leg_billsec,
		       count(*) FILTER (WHERE v.is_call) AS calls,
		       count(*) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED') AS answered,
		       coalesce(sum(v.billsec) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED'), 0) AS billsec,
		       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0) AS duration,
		       coalesce(sum(v.sell_cost), 0) AS sell_cost, coalesce(sum(v.buy_cost), 0) AS buy_cost,
		       count(*) FILTER (WHERE v.sell_cost IS NOT NULL OR v.buy_cost IS NOT NULL) AS rated,
		       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0) AS mos_sum,
		       count(v.mos) FILTER (WHERE v.is_call) AS mos_n
		FROM call_batch b
		JOIN rollup_leg_v v ON v.call_id = b.call_id AND v.node = b.node
		GROUP BY 1, 2, 3, 4, 5, 6
	), h AS (
		INSERT INTO rollup_hourly AS r SELECT * FROM d
		ON CONFLICT (hour, tenant, direction, disposition, country, trunk) DO UPDATE SET
			legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
			calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
			billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
			sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
			rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum,
			mos_n = r.mos_n + excluded.mos_n
	)
	INSERT INTO rollup_daily AS r
	SELECT date_trunc('day', d.hour, 'UTC'), d.tenant, d.direction, d.disposition, d.country, d.trunk,
	       sum(d.legs), sum(d.leg_billsec), sum(d.calls), sum(d.answered), sum(d.billsec), sum(d.duration),
	       sum(d.sell_cost), sum(d.buy_cost), sum(d.rated), sum(d.mos_sum), sum(d.mos_n)
	FROM d GROUP BY 1, 2, 3, 4, 5, 6
	ON CONFLICT (day, tenant, direction, disposition, country, trunk) DO UPDATE SET
		legs = r.legs + excluded.legs, leg_billsec = r.leg_billsec + excluded.leg_billsec,
		calls = r.calls + excluded.calls, answered = r.answered + excluded.answered,
		billsec = r.billsec + excluded.billsec, duration = r.duration + excluded.duration,
		sell_cost = r.sell_cost + excluded.sell_cost, buy_cost = r.buy_cost + excluded.buy_cost,
		rated = r.rated + excluded.rated, mos_sum = r.mos_sum + excluded.mos_sum, mos_n = r.mos_n + excluded.mos_n;
END $$;

-- Late in the chain: tenant, direction, rating and QoS steps come first.
INSERT INTO analytics_step (fn, ord) VALUES ('rollup_after_batch', 900);

-- Derived metrics (docs/metrics.md): asr_dial_legs = answered / calls,
-- acd_answered_s = billsec / answered, avg_worst_mos = mos_sum / mos_n;
-- NULL when the denominator is 0.  Aggregate the sums first, derive last.
CREATE VIEW rollup_hourly_v WITH (security_invoker = true) AS
SELECT r.*,
       r.answered::numeric / nullif(r.calls, 0) AS asr,
       r.billsec::numeric / nullif(r.answered, 0) AS acd,
       r.mos_sum / nullif(r.mos_n, 0) AS avg_mos
FROM rollup_hourly r;

CREATE VIEW rollup_daily_v WITH (security_invoker = true) AS
SELECT r.*,
       r.answered::numeric / nullif(r.calls, 0) AS asr,
       r.billsec::numeric / nullif(r.answered, 0) AS acd,
       r.mos_sum / nullif(r.mos_n, 0) AS avg_mos
FROM rollup_daily r;

-- Months (UTC) from the daily rollup: what month reports read.
CREATE VIEW rollup_monthly_v WITH (security_invoker = true) AS
SELECT m.*,
       m.answered::numeric / nullif(m.calls, 0) AS asr,
       m.billsec::numeric / nullif(m.answered, 0) AS acd,
       m.mos_sum / nullif(m.mos_n, 0) AS avg_mos
FROM (SELECT date_trunc('month', day, 'UTC') AS month, tenant, direction, disposition, country, trunk,
	     sum(legs) AS legs, sum(leg_billsec) AS leg_billsec, sum(calls) AS calls, sum(answered) AS answered,
	     sum(billsec) AS billsec, sum(duration) AS duration, sum(sell_cost) AS sell_cost,
	     sum(buy_cost) AS buy_cost, sum(rated) AS rated, sum(mos_sum) AS mos_sum, sum(mos_n) AS mos_n
      FROM rollup_daily GROUP BY 1, 2, 3, 4, 5, 6) m;

-- Retention (cdrflow-etl retention, etl/retention.c): the monthly-
-- partitioned tables whose <table>_yYYYYmMM partitions are dropped when
-- older than the kept window, and the column they are partitioned on (to
-- report old rows stuck in <table>_default).  Other families register
-- theirs here.  The rollups are not listed: they are kept forever.
CREATE TABLE retention_table (
	tbl         text PRIMARY KEY,
	time_column text NOT NULL
);
INSERT INTO retention_table (tbl, time_column) VALUES
	('cel', 'eventtime'), ('cdr', 'calldate'), ('call', 'start'), ('ami_event', 'eventtime');

-- Row-level security.  Every tenant reader role is a member of
-- cdrflow_reader and listed in tenant_role; the policies (FOR SELECT TO
-- cdrflow_reader) let it see the rows whose tenant is its own.  The owner
-- of the tables (the ETL's role) is not subject to RLS (no FORCE ROW LEVEL
-- SECURITY); any other role without BYPASSRLS sees no row of these tables
-- unless a policy says otherwise.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdrflow_reader') THEN
		CREATE ROLE cdrflow_reader NOLOGIN;
	END IF;
END $$;

CREATE TABLE tenant_role (
	role   name PRIMARY KEY,
	tenant text NOT NULL CHECK (tenant <> '')
);

-- Readers may read their own mapping row only.  The policies below name
-- tenant_role directly: a policy's tables are bound when it is created, so
-- a reader's temporary table cannot shadow it.  (Not a SECURITY DEFINER
-- function: inside one current_user is the owner, not the reader.)
ALTER TABLE tenant_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reader ON tenant_role FOR SELECT TO cdrflow_reader USING (role = current_user);
GRANT SELECT ON tenant_role TO cdrflow_reader;

-- The tenant of the connected role (NULL: none), for reports and psql.
DO $$
BEGIN
	EXECUTE format($f$
		CREATE FUNCTION cdrflow_current_tenant() RETURNS text
		LANGUAGE sql STABLE SET search_path = %1$I, pg_temp AS
		'SELECT tenant FROM %1$I.tenant_role WHERE role = current_user'$f$, current_schema());
END $$;

-- Enable RLS with the reader policy on every table of this schema that has
-- a tenant column (partitioned parents and plain tables; partitions are not
-- granted, so readers go through the parent), on cel and ami_event through
-- the linkedids of the reader's own legs, and grant SELECT on them, on the
-- reference tables and on every security_invoker view.  Idempotent: run
-- again after adding tables (cdrflow_create_tenant_reader does).
CREATE FUNCTION cdrflow_tenant_rls() RETURNS void
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
				       'USING (tenant = (SELECT r.tenant FROM tenant_role r WHERE r.role = current_user))', r.tbl);
		END IF;
		EXECUTE format('GRANT SELECT ON %s TO cdrflow_reader', r.tbl);
	END LOOP;
	-- events carry no tenant: visible when the reader has a leg with the
	-- same node and linkedid
	FOR r IN SELECT c.oid::regclass AS tbl, c.relname
		 FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
		   AND c.relname IN ('cel', 'ami_event')
	LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.tbl);
		IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = r.tbl AND polname = 'tenant_reader') THEN
			EXECUTE format('CREATE POLICY tenant_reader ON %s FOR SELECT TO cdrflow_reader '
				       'USING (linkedid IS NOT NULL AND EXISTS (SELECT 1 FROM cdr l WHERE l.linkedid = %I.linkedid '
				       'AND l.node = %I.node AND l.tenant = (SELECT r.tenant FROM tenant_role r WHERE r.role = current_user)))',
				       r.tbl, r.relname, r.relname);
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

-- Create (or reuse) a role reading only tenant p_tenant's rows.  A reused
-- role must not be a superuser or have BYPASSRLS (it would see everything).
CREATE FUNCTION cdrflow_create_tenant_reader(p_tenant text, p_role text, p_login boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r pg_roles%ROWTYPE;
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
	INSERT INTO tenant_role (role, tenant) VALUES (p_role, p_tenant)
	ON CONFLICT (role) DO UPDATE SET tenant = excluded.tenant;
	PERFORM cdrflow_tenant_rls();
END $$;

SELECT cdrflow_tenant_rls();

#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='hourly/daily rollups stay exactly the aggregate of their legs; retention drops whole old partitions; tenant readers see only their rows'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
RETENTION=$CDRFLOW_BUILD/tests/retention-run
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
[ -x "$RETENTION" ] || bail_out "no $RETENTION (make test-programs)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s01_answered >/dev/null || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t4400.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"

SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s03b_sip_rtp_impaired s04_queue s05_transfer s06_fork
s07_trunk_tenant s08_burst"
export PGTZ=UTC
q() { psql -X -Atc "$1"; }
oracle() { echo "$(dirname "$(capture_path "$1")")/cdr.csv"; }

# many small batches: a call's legs often arrive batches before the call
cat >small.yaml <<'YAML'
etl:
  batch_events: 100
cdr:
  unanswered: yes
  congestion: yes
  endbeforehexten: no
# the destination country comes from dst_e164 (0016): "00" is international
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
    min_length: 7
YAML

# Stand-ins for the steps other families register before the rollup (lower
# ord): a leg's tenant from its accountcode when the leg is written, a
# call's direction and tenant when the call is written.
cat >steps.sql <<'SQL'
CREATE FUNCTION test_leg_tenant(text, bigint, bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE cdr SET tenant = b.accountcode FROM cdr_batch b
	WHERE cdr.node = b.node AND cdr.uniqueid = b.uniqueid AND cdr.calldate = b.calldate
	  AND cdr.sequence IS NOT DISTINCT FROM b.sequence AND b.accountcode LIKE 'tenant%';
END $$;
CREATE FUNCTION test_call_direction(text, bigint, bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE call k SET
		direction = CASE WHEN k.src LIKE '+%' OR k.src = 'anonymous' THEN 'inbound'
				 WHEN k.dst ~ '^(\+|00)' THEN 'outbound' ELSE 'internal' END,
		tenant = (SELECT min(l.tenant) FROM cdr l WHERE l.call_id = k.call_id AND l.node = k.node)
	FROM call_batch b WHERE k.call_id = b.call_id AND k.node = b.node;
END $$;
INSERT INTO analytics_step (fn, ord) VALUES ('test_leg_tenant', 100), ('test_call_direction', 110);
SQL

# The definition: the rollup's sums recomputed from every leg of rollup_leg_v.
cat >expect.sql <<'SQL'
CREATE VIEW expect_hourly AS
SELECT v.hour, v.tenant, v.direction, v.disposition, v.country, v.trunk,
       count(*) AS legs, coalesce(sum(v.billsec), 0) AS leg_billsec,
       count(*) FILTER (WHERE v.is_call) AS calls,
       count(*) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED') AS answered,
       coalesce(sum(v.billsec) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED'), 0) AS billsec,
       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0) AS duration,
       coalesce(sum(v.sell_cost), 0) AS sell_cost, coalesce(sum(v.buy_cost), 0) AS buy_cost,
       count(*) FILTER (WHERE v.sell_cost IS NOT NULL OR v.buy_cost IS NOT NULL) AS rated,
       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0) AS mos_sum,
       count(v.mos) FILTER (WHERE v.is_call) AS mos_n,
       count(v.buy_cost) AS buy_n, count(v.sell_cost) AS sell_n
FROM rollup_leg_v v GROUP BY 1, 2, 3, 4, 5, 6;
CREATE VIEW expect_daily AS
SELECT date_trunc('day', hour, 'UTC') AS day, tenant, direction, disposition, country, trunk,
       sum(legs) legs, sum(leg_billsec) leg_billsec, sum(calls) calls, sum(answered) answered, sum(billsec) billsec,
       sum(duration) duration, sum(sell_cost) sell_cost, sum(buy_cost) buy_cost, sum(rated) rated,
       sum(mos_sum) mos_sum, sum(mos_n) mos_n, sum(buy_n) buy_n, sum(sell_n) sell_n
FROM expect_hourly GROUP BY 1, 2, 3, 4, 5, 6;
-- the margin rollup (0051): rollup_leg_v's rated legs and costs per carrier
CREATE VIEW expect_margin_hourly AS
SELECT v.hour, v.tenant, v.country, v.carrier, count(*) AS legs, sum(v.rated) AS rated,
       coalesce(sum(v.billsec) FILTER (WHERE v.rated = 1), 0) AS rated_billsec,
       coalesce(sum(v.buy_cost), 0) AS buy_cost, coalesce(sum(v.sell_cost), 0) AS sell_cost,
       count(v.buy_cost) AS buy_n, count(v.sell_cost) AS sell_n
FROM rollup_leg_v v GROUP BY 1, 2, 3, 4;
-- the statement rollup (0055): rollup_leg_v's legs with a sell cost per node
CREATE VIEW expect_statement_hourly AS
SELECT v.hour, v.tenant, v.country, v.node, count(*) AS charged, sum(v.billsec) AS billsec,
       sum(v.sell_cost) AS sell_cost
FROM rollup_leg_v v WHERE v.sell_cost IS NOT NULL GROUP BY 1, 2, 3, 4;
-- the call rollup: metric_call_v counted per UTC hour of start and key
CREATE VIEW expect_call_hourly AS
SELECT date_trunc('hour', k.start, 'UTC') AS hour, k.tenant, k.direction, k.country, k.trunk,
       count(*) AS calls, sum(k.answered_call) AS answered_calls
FROM metric_call_v k GROUP BY 1, 2, 3, 4, 5;
-- the quarter-hour rollups (0074): the same sums per UTC quarter hour,
-- the quarter hour computed here from the epoch, not by the function
CREATE VIEW expect_quarter AS
SELECT to_timestamp(floor(extract(epoch FROM v.calldate) / 900) * 900) AS quarter,
       v.tenant, v.direction, v.disposition, v.country, v.trunk,
       count(*) AS legs, coalesce(sum(v.billsec), 0) AS leg_billsec,
       count(*) FILTER (WHERE v.is_call) AS calls,
       count(*) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED') AS answered,
       coalesce(sum(v.billsec) FILTER (WHERE v.is_call AND v.disposition = 'ANSWERED'), 0) AS billsec,
       coalesce(sum(v.duration) FILTER (WHERE v.is_call), 0) AS duration,
       coalesce(sum(v.sell_cost), 0) AS sell_cost, coalesce(sum(v.buy_cost), 0) AS buy_cost,
       count(*) FILTER (WHERE v.sell_cost IS NOT NULL OR v.buy_cost IS NOT NULL) AS rated,
       coalesce(sum(v.mos) FILTER (WHERE v.is_call), 0) AS mos_sum,
       count(v.mos) FILTER (WHERE v.is_call) AS mos_n,
       count(v.buy_cost) AS buy_n, count(v.sell_cost) AS sell_n
FROM rollup_leg_v v GROUP BY 1, 2, 3, 4, 5, 6;
CREATE VIEW expect_statement_quarter AS
SELECT to_timestamp(floor(extract(epoch FROM v.calldate) / 900) * 900) AS quarter, v.tenant, v.country, v.node,
       count(*) AS charged, sum(v.billsec) AS billsec, sum(v.sell_cost) AS sell_cost
FROM rollup_leg_v v WHERE v.sell_cost IS NOT NULL GROUP BY 1, 2, 3, 4;
CREATE VIEW expect_call_quarter AS
SELECT to_timestamp(floor(extract(epoch FROM k.start) / 900) * 900) AS quarter, k.tenant, k.direction, k.country,
       k.trunk, count(*) AS calls, sum(k.answered_call) AS answered_calls
FROM metric_call_v k GROUP BY 1, 2, 3, 4, 5;
-- rows of one side missing or different on the other, both ways
CREATE VIEW rollup_diff AS
SELECT 'hourly: rollup not base' AS what, count(*) AS n FROM (TABLE rollup_hourly EXCEPT TABLE expect_hourly) x
UNION ALL SELECT 'hourly: base not rollup', count(*) FROM (TABLE expect_hourly EXCEPT TABLE rollup_hourly) x
UNION ALL SELECT 'daily: rollup not base', count(*) FROM (TABLE rollup_daily EXCEPT TABLE expect_daily) x
UNION ALL SELECT 'daily: base not rollup', count(*) FROM (TABLE expect_daily EXCEPT TABLE rollup_daily) x
UNION ALL SELECT 'margin: rollup not base', count(*) FROM (TABLE rollup_margin_hourly EXCEPT TABLE expect_margin_hourly) x
UNION ALL SELECT 'margin: base not rollup', count(*) FROM (TABLE expect_margin_hourly EXCEPT TABLE rollup_margin_hourly) x
UNION ALL SELECT 'margin daily: rollup not base', count(*) FROM (TABLE rollup_margin_daily EXCEPT
	SELECT date_trunc('day', hour, 'UTC'), tenant, country, carrier, sum(legs), sum(rated), sum(rated_billsec),
	       sum(buy_cost), sum(sell_cost), sum(buy_n), sum(sell_n) FROM expect_margin_hourly GROUP BY 1, 2, 3, 4) x
UNION ALL SELECT 'statement: rollup not base', count(*) FROM (TABLE rollup_statement_hourly EXCEPT TABLE expect_statement_hourly) x
UNION ALL SELECT 'statement: base not rollup', count(*) FROM (TABLE expect_statement_hourly EXCEPT TABLE rollup_statement_hourly) x
UNION ALL SELECT 'calls: rollup not base', count(*) FROM (TABLE rollup_call_hourly EXCEPT TABLE expect_call_hourly) x
UNION ALL SELECT 'calls: base not rollup', count(*) FROM (TABLE expect_call_hourly EXCEPT TABLE rollup_call_hourly) x
UNION ALL SELECT 'quarter: rollup not base', count(*) FROM (TABLE rollup_quarter_hour EXCEPT TABLE expect_quarter) x
UNION ALL SELECT 'quarter: base not rollup', count(*) FROM (TABLE expect_quarter EXCEPT TABLE rollup_quarter_hour) x
UNION ALL SELECT 'statement quarter: rollup not base', count(*) FROM (TABLE rollup_statement_quarter_hour EXCEPT TABLE expect_statement_quarter) x
UNION ALL SELECT 'statement quarter: base not rollup', count(*) FROM (TABLE expect_statement_quarter EXCEPT TABLE rollup_statement_quarter_hour) x
UNION ALL SELECT 'call quarter: rollup not base', count(*) FROM (TABLE rollup_call_quarter_hour EXCEPT TABLE expect_call_quarter) x
UNION ALL SELECT 'call quarter: base not rollup', count(*) FROM (TABLE expect_call_quarter EXCEPT TABLE rollup_call_quarter_hour) x
UNION ALL SELECT 'monthly: view not base', count(*) FROM (
	SELECT month, tenant, direction, disposition, country, trunk, legs, calls, answered, billsec, sell_cost, mos_sum, mos_n
	FROM rollup_monthly_v
	EXCEPT
	SELECT date_trunc('month', hour, 'UTC'), tenant, direction, disposition, country, trunk, sum(legs), sum(calls),
	       sum(answered), sum(billsec), sum(sell_cost), sum(mos_sum), sum(mos_n)
	FROM expect_hourly GROUP BY 1, 2, 3, 4, 5, 6) x;
SQL

# Synthetic batches the way the ETL makes them: legs first (no call_id),
# their call a batch later (call_id set, call in call_batch), then the step.
# Times from 2026-12-31 21:00 to 2027-01-01 03:00 UTC (hour, day, month and
# year boundaries), calls whose legs start in a later hour than the call,
# three tenants and no tenant, every direction, costs and MOS or NULL.
cat >synthetic.sql <<'SQL'
SELECT setseed(0.4400);
SELECT cdrflow_ensure_month('2026-12-15'), cdrflow_ensure_month('2027-01-15');
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
CREATE TEMP TABLE syn_leg (LIKE cdr INCLUDING DEFAULTS);
DO $$
DECLARE
	i int; j int; k int; t timestamptz; cid text;
	dsts text[] := ARRAY['+442071234567', '0033123456789', '2001', '+12425550000', '008821234567', '+31201234567', ''];
	chans text[] := ARRAY['SIP/carrier-0000001a', 'Local/2001@internal-0000000b;2', 'PJSIP/trunk2-00000c1f', ''];
	apps text[] := ARRAY['Dial', 'Queue', 'Wait', 'AppDial2', 'Hangup'];
	disps text[] := ARRAY['ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED', 'CONGESTION'];
	tenants text[] := ARRAY['t1', 't2', 't3', NULL];
	dirs text[] := ARRAY['inbound', 'outbound', 'internal', 'unknown', NULL];
	bill int;
BEGIN
	FOR i IN 1..30 LOOP
		TRUNCATE call_batch;
		-- the calls whose legs the previous batch wrote
		INSERT INTO call (call_id, node, start, "end", direction, tenant, outcome, linkedids, legs, worst_mos)
		SELECT l.linkedid, 'syn', min(l.calldate), max(l."end"), dirs[1 + floor(random() * 4)::int],
		       min(l.tenant), 'answered', ARRAY[l.linkedid], count(*),
		       CASE WHEN random() < 0.5 THEN round((1 + random() * 3.5)::numeric, 2) END
		FROM syn_leg l GROUP BY l.linkedid;
		INSERT INTO call_batch SELECT k.* FROM call k JOIN (SELECT DISTINCT linkedid FROM syn_leg) s
			ON k.call_id = s.linkedid AND k.node = 'syn';
		UPDATE cdr SET call_id = linkedid WHERE node = 'syn' AND call_id IS NULL
			AND linkedid IN (SELECT call_id FROM call_batch);
		-- every other batch inside a run of cdrflow_after_batch, as its
		-- marker names it (0063): the steps after the first reuse the
		-- legs it read, the next run reads its own
		IF i % 2 = 1 THEN
			PERFORM set_config('cdrflow.after_batch_run', 'syn' || i, true);
		END IF;
		PERFORM rollup_after_batch('syn', 0, 0);
		PERFORM rollup_call_after_batch('syn', 0, 0);
		PERFORM rollup_margin_after_batch('syn', 0, 0);
		PERFORM rollup_statement_after_batch('syn', 0, 0);
		PERFORM set_config('cdrflow.after_batch_run', '', true);
		TRUNCATE syn_leg;
		IF i = 30 THEN
			EXIT;
		END IF;
		-- this batch's legs
		FOR j IN 1..40 LOOP
			cid := 'syn-' || i || '-' || j;
			t := '2026-12-31 21:00:00+00'::timestamptz + random() * interval '6 hours';
			FOR k IN 1..1 + floor(random() * 4)::int LOOP
				bill := CASE WHEN random() < 0.6 THEN floor(random() * 600)::int ELSE 0 END;
				INSERT INTO syn_leg (calldate, answer, "end", dst, channel, dstchannel, lastapp, duration, billsec,
						     disposition, uniqueid, linkedid, node, tenant, direction, sell_cost, buy_cost, worst_mos)
				VALUES (t + k * random() * interval '20 minutes', NULL, t + interval '1 hour',
					dsts[1 + floor(random() * 7)::int], chans[1 + floor(random() * 4)::int],
					chans[1 + floor(random() * 4)::int], apps[1 + floor(random() * 5)::int],
					bill + floor(random() * 30)::int, bill,
					CASE WHEN bill > 0 THEN 'ANSWERED' ELSE disps[2 + floor(random() * 4)::int] END,
					cid || '.' || k, cid, 'syn', tenants[1 + floor(random() * 4)::int],
					dirs[1 + floor(random() * 5)::int],
					CASE WHEN random() < 0.7 THEN floor(random() * 5000000)::bigint END,
					CASE WHEN random() < 0.5 THEN floor(random() * 3000000)::bigint END,
					CASE WHEN random() < 0.4 THEN round((1 + random() * 3.5)::numeric, 3) END);
			END LOOP;
		END LOOP;
		-- the facts cdrflow-etl derives and stores: some trunk and country
		UPDATE syn_leg SET trunk = split_part(dstchannel, '-', 1),
			dst_country = (SELECT c.iso FROM rollup_country_code c WHERE syn_leg.dst LIKE '+' || c.prefix || '%'
				       ORDER BY length(c.prefix) DESC LIMIT 1);
		INSERT INTO cdr SELECT * FROM syn_leg;
	END LOOP;
END $$;
SQL

# The same batch's calls rolled up a second time: the comparison must see it.
cat >twice.sql <<'SQL'
BEGIN;
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
INSERT INTO call_batch SELECT * FROM call WHERE node = 's07_trunk_tenant' LIMIT 3;
SELECT rollup_after_batch('s07_trunk_tenant', 0, 0);
SELECT sum(n) FROM rollup_diff;
ROLLBACK;
BEGIN;
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
INSERT INTO call_batch SELECT * FROM call WHERE node = 's07_trunk_tenant' LIMIT 3;
SELECT rollup_call_after_batch('s07_trunk_tenant', 0, 0);
SELECT sum(n) FROM rollup_diff;
ROLLBACK;
SQL

# Legs per disposition, dial legs (calls_dial_legs) and answered dial legs,
# legs per tenantX accountcode, straight from the Master.csv rows Asterisk wrote.
cat >oracle-totals.py <<'PY'
import csv, sys, collections
legs = collections.Counter(); calls = collections.Counter(); ten = collections.Counter()
for path in sys.argv[1:]:
    for r in csv.reader(open(path, newline='')):
        acct, dstchannel, lastapp, disp = r[0], r[6], r[7], r[14]
        legs[disp] += 1
        if dstchannel != '' or lastapp in ('Dial', 'Queue'):
            calls[disp] += 1
        if acct.startswith('tenant'):
            ten[acct] += 1
for d in sorted(legs):
    print('disp|%s|%d|%d' % (d, legs[d], calls[d]))
for t in sorted(ten):
    print('tenant|%s|%d' % (t, ten[t]))
PY

test_expect_success 'every capture (Cdr events kept) loads in batches of 100 events; every leg ends in a call' '
	(for s in $SCENARIOS; do
		cdrflow_collector --replay "$(capture_path $s)" --spool spool --node $s >/dev/null || exit 1
	done) &&
	psql -X -q -v ON_ERROR_STOP=1 -f steps.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f expect.sql &&
	"$ETL" --once -c small.yaml --spool spool >out &&
	cat out &&
	batches=$(sed -n "s/.* batches=\\([0-9]*\\).*/\\1/p" out) &&
	test "$batches" -ge 1000 &&
	test "$(q "select count(*) from cdr")" = "$(cat $(for s in $SCENARIOS; do oracle $s; done) | wc -l)" &&
	test "$(q "select count(*) from cdr where call_id is null")" = 0
'

test_expect_success 'hourly, daily and monthly rollups equal the GROUP BY of their legs (EXCEPT both ways empty)' '
	q "select what, n from rollup_diff" >diff.out &&
	cat diff.out &&
	test "$(q "select sum(n) from rollup_diff")" = 0 &&
	test "$(q "select sum(legs) from rollup_hourly")" = "$(q "select count(*) from cdr")" &&
	test "$(q "select count(distinct tenant) from rollup_hourly where tenant <> '"''"'")" -ge 2 &&
	test "$(q "select count(distinct direction) from rollup_hourly")" -ge 3 &&
	test "$(q "select count(distinct country) from rollup_hourly where country <> '"''"'")" -ge 4 &&
	test "$(q "select count(*) from rollup_hourly where trunk = '"'SIP/loop'"'")" -gt 0
'

test_expect_success 'rollup totals per disposition and tenant equal the cdr.csv rows Asterisk wrote' '
	"$PYTHON" oracle-totals.py $(for s in $SCENARIOS; do oracle $s; done) >expect.totals &&
	{
		q "select '"'disp'"', disposition, sum(legs), sum(calls) from rollup_hourly group by 2 order by 2" &&
		q "select '"'tenant'"', tenant, sum(legs) from rollup_hourly where tenant <> '"''"' group by 2 order by 2"
	} >actual.totals &&
	test_cmp expect.totals actual.totals &&
	test "$(q "select sum(answered) from rollup_hourly")" = \
	     "$(grep "^disp|ANSWERED|" expect.totals | cut -d"|" -f4)"
'

test_expect_success 'the comparison catches a batch rolled up twice (legs, then calls)' '
	psql -X -q -At -v ON_ERROR_STOP=1 -f twice.sql | grep -E "^[0-9]+$" >twice.out &&
	echo "differences: $(tr "\n" " " <twice.out)" &&
	test "$(wc -l <twice.out)" = 2 &&
	test "$(sed -n 1p twice.out)" -gt 0 &&
	test "$(sed -n 2p twice.out)" -gt 0 &&
	test "$(q "select sum(n) from rollup_diff")" = 0
'

test_expect_success 'synthetic batches across hour, day, month and year boundaries, 3 tenants, costs and MOS: still exact' '
	psql -X -q -v ON_ERROR_STOP=1 -f synthetic.sql &&
	q "select what, n from rollup_diff" &&
	test "$(q "select sum(n) from rollup_diff")" = 0 &&
	test "$(q "select count(*) from cdr where node = '"'syn'"' and call_id is null")" = 0 &&
	test "$(q "select count(distinct hour) from rollup_hourly where hour >= '"'2026-12-31 21:00Z'"'")" -ge 6 &&
	test "$(q "select count(distinct day) from rollup_daily where day >= '"'2026-12-31Z'"'")" = 2 &&
	test "$(q "select count(distinct month) from rollup_monthly_v")" = 3 &&
	test "$(q "select count(distinct tenant) from rollup_hourly where tenant in ('"'t1'"', '"'t2'"', '"'t3'"')")" = 3 &&
	test "$(q "select count(*) from rollup_hourly where rated > 0 and sell_cost > 0 and mos_n > 0")" -gt 0 &&
	test "$(q "select count(distinct tenant) from rollup_statement_hourly where hour >= '"'2026-12-31 21:00Z'"'")" -ge 3 &&
	test "$(q "select sum(legs) from rollup_hourly")" = "$(q "select count(*) from cdr")" &&
	# hours split in quarter hours (0074): more rows than the hours, the same legs
	test "$(q "select count(distinct quarter) from rollup_quarter_hour")" -gt \
	     "$(q "select count(distinct hour) from rollup_hourly")" &&
	test "$(q "select sum(legs) from rollup_quarter_hour")" = "$(q "select count(*) from cdr")" &&
	test "$(q "select sum(calls) from rollup_call_quarter_hour")" = "$(q "select count(*) from call")" &&
	test "$(q "select count(distinct quarter) from rollup_statement_quarter_hour")" -gt \
	     "$(q "select count(distinct hour) from rollup_statement_hourly")" &&
	test "$(q "select sum(charged) from rollup_statement_quarter_hour")" = \
	     "$(q "select count(*) from cdr where sell_cost is not null")"
'

# 0078: a rollup a migration built from the warehouse is rewritten in its
# time key's order (a day of a report on a few pages); every rollup whose
# key starts with its time is covered.
back_steps() { # rows of rollup_quarter_hour stored after a later quarter hour
	q "select count(*) from (select quarter < lag(quarter) over (order by ctid) as back
	   from rollup_quarter_hour) x where back"
}
test_expect_success 'cdrflow_rollups_in_time_order (0078): scattered rows back in time order, the same rows, every rollup' '
	# the migration ran it: every such rollup is marked clustered on its key
	test "$(q "select count(*) from pg_class c join pg_index i on i.indrelid = c.oid and i.indisprimary
		join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
		where c.relkind = '"'r'"' and c.relname like '"'rollup%'"' and a.atttypid = '"'timestamptz'"'::regtype
		and not i.indisclustered")" = 0 &&
	q "create table rq_keep as select * from rollup_quarter_hour" &&
	q "truncate rollup_quarter_hour; insert into rollup_quarter_hour select * from rq_keep order by md5(quarter::text || tenant || trunk)" &&
	test "$(back_steps)" -gt 0 &&
	n=$(q "select cdrflow_rollups_in_time_order()") &&
	test "$n" = "$(q "select count(*) from pg_class c join pg_index i on i.indrelid = c.oid and i.indisprimary
		join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
		where c.relkind = '"'r'"' and c.relname like '"'rollup%'"' and a.atttypid = '"'timestamptz'"'::regtype")" &&
	test "$n" -ge 11 &&
	test "$(back_steps)" = 0 &&
	test "$(q "select count(*) from (table rq_keep except table rollup_quarter_hour) x")" = 0 &&
	test "$(q "select count(*) from rq_keep")" = "$(q "select count(*) from rollup_quarter_hour")" &&
	q "drop table rq_keep" &&
	test "$(q "select sum(n) from rollup_diff")" = 0
'

test_expect_success 'derived metrics: ASR = answered/calls, ACD = billsec/answered, avg MOS = mos_sum/mos_n, NULL on 0' '
	test "$(q "select count(*) from rollup_hourly_v where (calls = 0) <> (asr is null) or asr < 0 or asr > 1")" = 0 &&
	test "$(q "select count(*) from rollup_hourly_v where (answered = 0) <> (acd is null)")" = 0 &&
	test "$(q "select count(*) from rollup_daily_v where (mos_n = 0) <> (avg_mos is null) or avg_mos < 1 or avg_mos > 5")" = 0 &&
	q "select month, round(sum(answered)::numeric / sum(calls), 4), round(sum(billsec)::numeric / sum(answered), 1)
	   from rollup_monthly_v group by 1 order by 1" &&
	test "$(q "select round(sum(answered)::numeric / sum(calls), 6) from rollup_monthly_v where month = '"'2026-11-01Z'"'")" = \
	     "$(q "select round(count(*) filter (where disposition = '"'ANSWERED'"')::numeric / count(*), 6) from cdr
		   where node <> '"'syn'"' and (dstchannel <> '"''"' or lastapp in ('"'Dial'"', '"'Queue'"'))")"
'

test_expect_success 'each loaded leg: its country is the longest prefix of its E.164 in the one table, its trunk a side'"'"'s endpoint' '
	test "$(q "select count(*) from cdr where node <> '"'syn'"' and dst_country is not null")" -gt 0 &&
	test "$(q "select count(*) from cdr l where node <> '"'syn'"' and dst_country is distinct from
		   (select c.iso from rollup_country_code c where l.dst_e164 like '"'+'"' || c.prefix || '"'%'"'
		    order by length(c.prefix) desc limit 1)")" = 0 &&
	test "$(q "select count(*) from cdr where node <> '"'syn'"' and trunk <> '"''"'")" -gt 0 &&
	test "$(q "select count(*) from cdr where node <> '"'syn'"' and trunk <> '"''"'
		   and channel not like trunk || '"'-%'"' and dstchannel not like trunk || '"'-%'"'")" = 0 &&
	test "$(q "select count(*) from pg_proc where proname in ('"'cdrflow_country'"', '"'cdrflow_trunk'"', '"'cdrflow_e164'"')")" = 0
'

test_expect_success 'retention --keep: months, years and days (fewest whole months covering the days); bad values refused' '
	(for kv in 13mo=13 1mo=1 2y=24 100y=1200 400d=14 365d=12 366d=13 28d=1 29d=2 59d=2 60d=3; do
		test "$("$RETENTION" --parse ${kv%%=*})" = ${kv#*=} || { echo "$kv: $("$RETENTION" --parse ${kv%%=*})"; exit 1; }
	done) &&
	(for bad in 0mo 13 13m -1mo 1201mo 101y 1.5y mo ""; do
		test_exit_code 64 "$RETENTION" --parse "$bad" 2>/dev/null || { echo "accepted: $bad"; exit 1; }
	done)
'

test_expect_success 'retention drops whole expired partitions (DETACH, DROP), keeps recent ones, never DELETEs' '
	q "select cdrflow_ensure_month('"'2020-01-15'"'), cdrflow_ensure_month('"'2020-02-15'"')" >/dev/null &&
	q "insert into cdr (calldate, \"end\", duration, billsec, disposition, uniqueid, linkedid, node)
	   values ('"'2020-01-15'"', '"'2020-01-15'"', 0, 0, '"'ANSWERED'"', '"'old.1'"', '"'old.1'"', '"'old'"'),
		  ('"'2020-02-15'"', '"'2020-02-15'"', 0, 0, '"'ANSWERED'"', '"'old.2'"', '"'old.2'"', '"'old'"'),
		  ('"'2019-06-15'"', '"'2019-06-15'"', 0, 0, '"'ANSWERED'"', '"'old.3'"', '"'old.3'"', '"'old'"')" &&
	q "insert into call (call_id, node, start, outcome, linkedids) values ('"'old.1'"', '"'old'"', '"'2020-01-15'"', '"'answered'"', '"'{old.1}'"')" &&
	q "insert into cel (eventtype, eventtime, node, seq, segno, seg_offset) values ('"'HANGUP'"', '"'2020-01-15'"', '"'old'"', 1, 0, 0)" &&
	q "insert into ami_event (event, eventtime, node, fields, seq, segno, seg_offset) values ('"'Hangup'"', '"'2020-02-15'"', '"'old'"', '"'{}'"', 1, 0, 0)" &&
	test "$(q "select count(*) from cdr_default")" = 1 &&
	b=$(q "select date_trunc('"'month'"', now() - interval '"'13 months'"', '"'UTC'"')") &&
	q "select cdrflow_ensure_month(timestamptz '"'"'$b'"'"' - interval '"'1 day'"'), cdrflow_ensure_month(timestamptz '"'"'$b'"'"')" >/dev/null &&
	q "insert into cdr (calldate, \"end\", duration, billsec, disposition, uniqueid, linkedid, node)
	   values (timestamptz '"'"'$b'"'"' - interval '"'1 second'"', timestamptz '"'"'$b'"'"', 0, 0, '"'BUSY'"', '"'edge.1'"', '"'edge.1'"', '"'old'"'),
		  (timestamptz '"'"'$b'"'"', timestamptz '"'"'$b'"'"', 0, 0, '"'BUSY'"', '"'edge.2'"', '"'edge.2'"', '"'old'"')" &&
	gone=$(q "select '"'y'"' || to_char(d, '"'YYYY'"') || '"'m'"' || to_char(d, '"'MM'"') from (select timestamptz '"'"'$b'"'"' - interval '"'1 day'"' as d) x") &&
	kept=$(q "select '"'y'"' || to_char(d, '"'YYYY'"') || '"'m'"' || to_char(d, '"'MM'"') from (select timestamptz '"'"'$b'"'"' as d) x") &&
	q "select count(*), sum(legs) from rollup_hourly" >rollup.before &&
	q "select count(*) from cdr where calldate >= '"'2026-11-01Z'"'" >recent.before &&
	"$RETENTION" --keep 13mo --dry-run >dry.out &&
	cat dry.out &&
	grep "^would drop cdr_y2020m01 (cdr, 2020-01, " dry.out &&
	grep "^would drop cdr_$gone " dry.out &&
	! grep "cdr_$kept" dry.out &&
	test "$(q "select to_regclass('"'cdr_y2020m01'"') is not null")" = t &&
	"$RETENTION" --keep 13mo >run.out &&
	cat run.out &&
	(for t in cel cdr call ami_event; do
		for m in y2020m01 y2020m02 $gone; do
			grep "^drop ${t}_$m ($t, " run.out &&
			test "$(q "select to_regclass('"'"'${t}_$m'"'"') is null")" = t || exit 1
		done
		test "$(q "select to_regclass('"'"'${t}_$kept'"'"') is not null")" = t &&
		test "$(q "select to_regclass('"'"'${t}_y2026m11'"'"') is not null")" = t || exit 1
	done) &&
	grep "^retention: dropped 12 partitions" run.out &&
	grep "^retention: cdr_default holds 1 rows before " run.out &&
	test "$(q "select uniqueid from cdr where node = '"'old'"' order by 1")" = "$(printf "edge.2\nold.3")" &&
	q "select count(*), sum(legs) from rollup_hourly" >rollup.after &&
	test_cmp rollup.before rollup.after &&
	q "select count(*) from cdr where calldate >= '"'2026-11-01Z'"'" >recent.after &&
	test_cmp recent.before recent.after &&
	"$RETENTION" --keep 13mo >again.out &&
	grep "^retention: dropped 0 partitions" again.out &&
	test_exit_code 64 "$RETENTION" --months 0 &&
	test "$(q "select to_regclass('"'"'cdr_$kept'"'"') is not null")" = t
'

# RLS: expected counts as the owner, with the definitions of docs/metrics.md
# (tenant column = the reader's tenant; events through the reader's legs).
RELS_TENANT="cdr call rollup_hourly rollup_daily rollup_leg_v rollup_hourly_v rollup_daily_v rollup_monthly_v"
expected_count() { # REL TENANT
	case $1 in
	cel|ami_event)
		q "select count(*) from $1 e where e.linkedid is not null and exists (select 1 from cdr l
		   where l.linkedid = e.linkedid and l.node = e.node and l.tenant = '$2')" ;;
	*) q "select count(*) from $1 where tenant = '$2'" ;;
	esac
}

test_expect_success 'tenant readers: each sees exactly its own rows in every table and view, nothing else' '
	q "select cdrflow_create_tenant_reader('"'tenantA'"', '"'reader_a'"'), cdrflow_create_tenant_reader('"'tenantB'"', '"'reader_b'"')" >/dev/null &&
	(for r in a:tenantA b:tenantB; do
		role=reader_${r%%:*} ten=${r#*:} &&
		for rel in $RELS_TENANT cel ami_event; do
			want=$(expected_count $rel $ten) &&
			all=$(q "select count(*) from $rel") &&
			got=$(psql -X -U $role -Atc "select count(*) from $rel") &&
			echo "$role $rel: $got of $all (want $want)" &&
			test "$want" -gt 0 && test "$got" = "$want" && test "$got" -lt "$all" || exit 1
		done &&
		for rel in $RELS_TENANT; do
			test "$(psql -X -U $role -Atc "select count(*) from $rel where tenant is distinct from '"'"'$ten'"'"'")" = 0 || exit 1
		done &&
		test "$(psql -X -U $role -Atc "select count(*) from cel e where not exists
			(select 1 from cdr l where l.linkedid = e.linkedid and l.node = e.node)")" = 0 || exit 1
	done)
'

test_expect_success 'readers cannot reach partitions or ETL tables, see only their own mapping; unmapped readers and definer views see nothing' '
	(for rel in cdr_y2026m11 call_default etl_checkpoint analytics_step retention_table; do
		test_exit_code 1 psql -X -U reader_a -Atc "select count(*) from $rel" 2>err &&
		grep "permission denied" err || exit 1
	done) &&
	test "$(psql -X -U reader_a -Atc "select role, tenant, cdrflow_current_tenant() from tenant_role")" = "reader_a|tenantA|tenantA" &&
	q "create role reader_none login in role cdrflow_reader" &&
	test "$(psql -X -U reader_none -Atc "select count(*) from cdr")" = 0 &&
	test "$(psql -X -U reader_none -Atc "select count(*) from rollup_hourly_v")" = 0 &&
	q "create view leak_v as select * from cdr; select cdrflow_tenant_rls()" >/dev/null &&
	test_exit_code 1 psql -X -U reader_a -Atc "select count(*) from leak_v" 2>err &&
	grep "permission denied" err &&
	test_exit_code 1 psql -X -U reader_a -Atc "select set_config('"'role'"', '"'reader_b'"', false); select count(*) from cdr" 2>/dev/null &&
	test "$(q "select count(*) from pg_class where relname in ('"'cdr'"', '"'call'"', '"'cel'"', '"'ami_event'"', '"'rollup_hourly'"', '"'rollup_daily'"')
		 and relrowsecurity and not relforcerowsecurity")" = 6 &&
	q "create role super_reader login bypassrls" &&
	test_exit_code 1 q "select cdrflow_create_tenant_reader('"'tenantA'"', '"'super_reader'"')" 2>/dev/null
'

test_expect_success 'a non-superuser ETL owner loads and sees every row (no FORCE RLS); its tenant readers see theirs' '
	q "create role etl_owner login createrole" &&
	q "create database owned owner etl_owner" &&
	PGUSER=etl_owner PGDATABASE=owned "$ETL" migrate >/dev/null &&
	PGUSER=etl_owner PGDATABASE=owned psql -X -q -v ON_ERROR_STOP=1 -f steps.sql &&
	cdrflow_collector --replay "$(capture_path s07_trunk_tenant)" --spool spool7 --node s07 >/dev/null &&
	PGUSER=etl_owner PGDATABASE=owned "$ETL" --once -c small.yaml --spool spool7 >/dev/null &&
	PGUSER=etl_owner PGDATABASE=owned psql -X -Atc "select cdrflow_create_tenant_reader('"'tenantB'"', '"'owned_b'"')" >/dev/null &&
	all=$(PGUSER=etl_owner PGDATABASE=owned psql -X -Atc "select count(*) from cdr") &&
	test "$all" = "$(wc -l <"$(oracle s07_trunk_tenant)")" &&
	test "$(PGUSER=etl_owner PGDATABASE=owned psql -X -Atc "select sum(legs) from rollup_hourly")" = "$all" &&
	b=$(PGUSER=owned_b PGDATABASE=owned psql -X -Atc "select count(*) from cdr") &&
	test "$b" = "$(grep -c "^\"tenantB\"" "$(oracle s07_trunk_tenant)")" &&
	test "$(PGUSER=owned_b PGDATABASE=owned psql -X -Atc "select sum(legs) from rollup_hourly")" = "$b"
'

test_expect_success 'cdrflow-etl retention: the command drops old months, keeps recent rows, refuses a bare number' '
	q "select cdrflow_ensure_month('"'"'2019-03-10'"'"')" >/dev/null &&
	test "$(q "select count(*) from pg_class where relname = '"'"'cdr_y2019m03'"'"'")" = 1 &&
	before=$(q "select count(*) from cdr where calldate > now() - interval '"'"'12 months'"'"'") &&
	"$ETL" retention --keep 13mo --dry-run >dry &&
	grep -q "would drop cdr_y2019m03" dry &&
	test "$(q "select count(*) from pg_class where relname = '"'"'cdr_y2019m03'"'"'")" = 1 &&
	"$ETL" retention --keep 13mo >out &&
	grep -q "^drop cdr_y2019m03" out &&
	test "$(q "select count(*) from pg_class where relname = '"'"'cdr_y2019m03'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where calldate > now() - interval '"'"'12 months'"'"'")" = "$before" &&
	test_exit_code 64 "$ETL" retention --keep 13 &&
	test_exit_code 64 "$ETL" retention
'

test_done

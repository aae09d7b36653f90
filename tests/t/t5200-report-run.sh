#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-report: every shipped template on real captures, PDF = CSV = XLSX = SQL; periods, bind parameters, exit codes, streaming'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
[ -x "$REPORT" ] || bail_out "no $REPORT (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
for t in pdftotext pdfinfo unzip; do
	command -v $t >/dev/null 2>&1 || skip_all "$t is not installed (poppler-utils, unzip)"
done
capture_path s04_queue >/dev/null || bail_out "captures not found"
AGREE="$PYTHON $TEST_ROOT/tests/report/report-agree.py"
export CDRFLOW_TEMPLATES=$TEST_ROOT/templates  # the labels the XLSX headers show
TEMPLATES=$TEST_ROOT/templates
if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then test_set_prereq GNU_TIME; fi

PGDIR=$(mktemp -d /tmp/cdrflow-t5200.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }
# report ARGS...: run cdrflow-report with the test configuration
report() { "$REPORT" -c "$TRASH/report.yaml" "$@"; }
# money TEXT: micro-units as the CSV shows money (2 decimals, half away from zero)
# money as every tool shows it: the rates' decimals (metric_money, migration 0019)
money() { q "select metric_money(coalesce($1, 0))"; }
hms() { printf '%d:%02d:%02d' $(($1 / 3600)) $(($1 / 60 % 60)) $(($1 % 60)); }

# the captures' rating set-up (as t4200: tenants by accountcode, one carrier
# trunk, buy and sell decks)
cat >buy.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.50,,60/60,,2020-01-01,
8823,Premium satellite,1.20,0.05,1/1,,2020-01-01,
239,Sao Tome,0.30,,30/6,3,2020-01-01,
447,UK mobile,0.02,,60/1,,2020-01-01,
CSV
cat >sell.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.90,,60/60,,2020-01-01,
88239,Premium satellite,2.40,0.10,1/1,,2020-01-01,
239,Sao Tome,0.45,,60/60,,2020-01-01,
44,UK,0.03,,60/60,,2020-01-01,
CSV
cat >etl.yaml <<YAML
cdr:
  unanswered: yes
  congestion: yes
  endbeforehexten: no
tenants:
  trunks: "SIP/loop-*"
  rules:
    - tenant: tenantA
      accountcode: tenantA
    - tenant: tenantB
      accountcode: tenantB
    - tenant: carrier
      context: carrier
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
rating:
  buy:
    - carrier: loopcarrier
      deck: $PWD/buy.csv
      trunk: "SIP/loop-*"
  sell:
    - tenant: tenantA
      deck: $PWD/sell.csv
    - tenant: tenantB
      deck: $PWD/sell.csv
YAML
# the same file configures the report (other programs' sections are ignored)
cp etl.yaml report.yaml
cat >>report.yaml <<YAML
report:
  templates_dir: $TEMPLATES
  out_dir: out
  tz: UTC
  paper: a4
YAML
mkdir bad
cat >bad/unknown-key.yaml <<'YAML'
title: Bad
sections:
  - type: table
    title: T
    colums: []
    sql: SELECT 1 AS one
YAML
cat >bad/unknown-param.yaml <<'YAML'
title: Bad
sections:
  - type: table
    title: T
    sql: |
      SELECT count(*) AS legs
      FROM cdr WHERE calldate >= :from AND tenant = :tenat
YAML
cat >bad/needs-table.yaml <<'YAML'
title: Needs a relation this database lacks
sections:
  - type: table
    title: T
    requires: [no_such_rollup_v]
    sql: SELECT 1 AS one
YAML
cat >bad/fails-late.yaml <<'YAML'
title: The second section fails
sections:
  - type: table
    title: First
    sql: SELECT 1 AS one
  - type: table
    title: Second
    sql: SELECT 1 / 0 AS boom
YAML
cat >bad/prefer.yaml <<'YAML'
title: A preferred source that does not exist, then the base table
sections:
  - type: kpis
    title: K
    prefer:
      - requires: [no_such_rollup_v]
        sql: SELECT -1 AS legs
    sql: SELECT count(*) AS legs FROM cdr WHERE calldate >= :from AND calldate < :to
YAML

# pdf_max_rows belongs to its table: the other tables keep the default
cat >bad/max-rows.yaml <<'YAML'
title: Two tables, one limited
formats: [pdf, html, csv]
sections:
  - type: table
    id: limited
    title: Limited
    pdf_max_rows: 3
    sql: SELECT 'first-' || g AS item FROM generate_series(1, 7) g ORDER BY g
  - type: table
    id: whole
    title: Whole
    sql: SELECT 'second-' || g AS item FROM generate_series(1, 7) g ORDER BY g
YAML

# The CDR export's CSV computed independently, by the server alone: times
# with to_char in the session's zone (seconds, as the report shows them),
# text quoted with the formula guard of report-formats.md, money from
# micro-units with six decimals, NULL as nothing.  psql -v day= -v tenant=
cat >cdr-ref.sql <<'SQL'
CREATE FUNCTION pg_temp.t(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL THEN '' ELSE '"' || replace(CASE WHEN x ~ '^[=@\t\r]'
		OR (x ~ '^[-+]' AND x !~ '^[-+][0-9]+(\.[0-9]+)?$') THEN '''' || x ELSE x END, '"', '""') || '"' END $$;
CREATE FUNCTION pg_temp.ts(x timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(to_char(x, 'YYYY-MM-DD HH24:MI:SS'), '') $$;
CREATE FUNCTION pg_temp.m(x bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce((x::numeric / 1000000)::numeric(30, 6)::text, '') $$;
SELECT string_agg(concat_ws(',', pg_temp.ts(calldate), pg_temp.ts(answer), pg_temp.ts("end"), pg_temp.t(node),
		pg_temp.t(uniqueid), pg_temp.t(linkedid), pg_temp.t(call_id), pg_temp.t(clid), pg_temp.t(src),
		pg_temp.t(dst), pg_temp.t(dcontext), pg_temp.t(channel), pg_temp.t(dstchannel), pg_temp.t(lastapp),
		pg_temp.t(lastdata), duration::text, billsec::text, pg_temp.t(disposition), pg_temp.t(accountcode),
		pg_temp.t(userfield), pg_temp.t(tenant), pg_temp.t(direction), pg_temp.t(src_e164), pg_temp.t(dst_e164),
		pg_temp.t(carrier), pg_temp.t(rate_status), pg_temp.m(buy_cost), pg_temp.m(sell_cost), pg_temp.m(margin)),
	E'\r\n' ORDER BY calldate, uniqueid) || E'\r\n'
FROM cdr
WHERE calldate >= :'day'::date AND calldate < :'day'::date + 1 AND (:'tenant' = '' OR tenant = :'tenant');
SQL

SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s03b_sip_rtp_impaired s04_queue s05_transfer s07_trunk_tenant"
TEMPLATE_NAMES="daily-traffic tenant-billing queue-service agent-performance qos fraud-digest cdr-export"

test_expect_success 'load several captures with tenants and rating' '
	for s in $SCENARIOS; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >load.out &&
	cat load.out &&
	test "$(q "select count(*) from cdr")" -gt 100 &&
	test "$(q "select count(*) from cdr where sell_cost > 0")" -gt 0 &&
	test "$(q "select count(*) from queue_call")" -gt 0 &&
	test "$(q "select count(*) from qos_leg where mos is not null")" -gt 0 &&
	DAY=$(q "select min(calldate)::date from cdr") &&
	test "$DAY" = "$(q "select max(calldate)::date from cdr")" &&
	echo "$DAY" >day
'
DAY=$(cat day 2>/dev/null)
base() { echo "out/$1-$DAY-$DAY"; }

test_expect_success 'list shows every shipped template with its parameters' '
	report list >list &&
	cat list &&
	for t in $TEMPLATE_NAMES; do grep -q "^$t: " list || return 1; done &&
	grep -q "^  --param tenant=text" list &&
	grep -q "^  --param sl_threshold=int (default 20)" list &&
	grep -q "^  --param interval=interval (default 1 hour)" list
'

test_expect_success 'every template runs in all three formats; paths on stdout, nothing half-written' '
	for t in $TEMPLATE_NAMES; do
		report run $t --from "$DAY" --format pdf,csv,xlsx >$t.paths 2>$t.err || { cat $t.err; return 1; }
		test -s $t.paths || return 1
		while read -r f; do test -s "$f" || { echo "missing $f"; return 1; }; done <$t.paths
		grep -qx "$(base $t).pdf" $t.paths && grep -qx "$(base $t).xlsx" $t.paths || return 1
		pdftotext -layout "$(base $t).pdf" $t.txt && pdfinfo "$(base $t).pdf" >$t.info || return 1
		# A4; a table too wide for portrait is on landscape pages (issue 11)
		grep -q "Page size: *\(595.276 x 841.89\|841.89 x 595.276\) pts (A4)" $t.info || return 1
	done &&
	test "$(ls -A out | grep -c "^\.")" = 0 &&
	test "$(cat *.paths | wc -l)" = "$(ls out | wc -l)"
'

test_expect_success 'daily traffic: KPIs = SQL aggregates, in CSV, XLSX and PDF' '
	b=$(base daily-traffic) &&
	legs=$(q "select count(*) from cdr") && bill=$(q "select sum(billsec) from cdr") &&
	calls=$(q "select count(*) from call") && sell=$(money "(select sum(sell_cost) from cdr)") &&
	test "$($AGREE csv-get $b-totals.csv - - Legs)" = "$legs" &&
	test "$($AGREE csv-get $b-totals.csv - - "Billed time")" = "$bill" &&
	test "$($AGREE csv-get $b-totals.csv - - Calls)" = "$calls" &&
	test "$($AGREE csv-get $b-totals.csv - - "Sell cost")" = "$sell" &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	grep -Eq "(^| )$legs +[0-9]+ +$(hms $bill) +$calls( |$)" daily-traffic.txt &&
	grep -Eq "(^| )[0-9.]+% +$sell( |$)" daily-traffic.txt
'

test_expect_success 'daily traffic: per tenant and direction = SQL; every row the same in PDF and XLSX' '
	b=$(base daily-traffic) &&
	q "select coalesce(tenant, '"'"'(none)'"'"'), coalesce(direction, '"'"'unknown'"'"'), count(*), sum(billsec),
	   coalesce(round(sum(sell_cost) / 1e6, 2)::text, '"'"''"'"') from cdr group by 1, 2 order by 1, 2" >sql.rows &&
	"$PYTHON" -c "import csv,sys; [print(\"|\".join([r[0], r[1], r[2], r[4], r[6]])) for r in list(csv.reader(open(sys.argv[1])))[1:]]" \
		$b-by-tenant.csv >csv.rows &&
	test_cmp sql.rows csv.rows &&
	grep -q "^tenantA|outbound|[0-9]*|[0-9]*|[0-9]*\.[0-9][0-9]\$" csv.rows &&
	$AGREE xlsx-table $b.xlsx 2 $b-by-tenant.csv &&
	$AGREE pdf-rows daily-traffic.txt $b-by-tenant.csv --durations billsec
'

test_expect_success 'tenant billing: buy, sell, margin per tenant = SQL; destinations add up; formats agree' '
	b=$(base tenant-billing) &&
	for t in tenantA tenantB; do
		w="(sell_cost is not null or buy_cost is not null) and tenant = '"'"'$t'"'"'" &&
		test "$($AGREE csv-get $b-by-tenant.csv tenant $t sell_cost)" = "$(money "(select sum(sell_cost) from cdr where $w)")" &&
		test "$($AGREE csv-get $b-by-tenant.csv tenant $t buy_cost)" = "$(money "(select sum(buy_cost) from cdr where $w)")" &&
		test "$($AGREE csv-get $b-by-tenant.csv tenant $t margin)" = \
			"$(money "(select coalesce(sum(sell_cost), 0) - coalesce(sum(buy_cost), 0) from cdr where $w)")" &&
		test "$($AGREE csv-get $b-by-tenant.csv tenant $t rated_legs)" = "$(q "select count(*) from cdr where $w")" || return 1
	done &&
	test "$($AGREE csv-get $b-totals.csv - - "Sell cost")" = "$(money "(select sum(sell_cost) from cdr where carrier is not null and tenant is not null)")" &&
	test "$(awk -F, "NR > 1 { n += \$4 } END { print n }" $b-by-destination.csv)" = \
		"$(q "select count(*) from cdr where carrier is not null and tenant is not null")" &&
	grep -q "\"tenantA\",\"International Networks\",\"88239\"," $b-by-destination.csv &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	$AGREE xlsx-table $b.xlsx 2 $b-by-tenant.csv &&
	$AGREE xlsx-table $b.xlsx 3 $b-by-destination.csv &&
	$AGREE pdf-rows tenant-billing.txt $b-by-tenant.csv &&
	$AGREE pdf-rows tenant-billing.txt $b-by-destination.csv --durations billsec
'

test_expect_success 'queue service level: answered and abandoned per queue = the capture'"'"'s queue_log' '
	b=$(base queue-service) && ql=$(dirname "$(capture_path s04_queue)")/queue_log &&
	queues=$(cut -d"|" -f3 "$ql" | sort -u | grep -v NONE) &&
	test -n "$queues" &&
	for qu in $queues; do
		conn=$(awk -F"|" -v q=$qu "\$3 == q && \$5 == \"CONNECT\"" "$ql" | wc -l) &&
		ab=$(awk -F"|" -v q=$qu "\$3 == q && \$5 == \"ABANDON\"" "$ql" | wc -l) &&
		test "$($AGREE csv-get $b-per-queue.csv queue $qu answered)" = "$conn" &&
		test "$($AGREE csv-get $b-per-queue.csv queue $qu abandoned)" = "$ab" || return 1
	done &&
	test "$($AGREE csv-get $b-totals.csv - - Answered)" = "$(grep -c "|CONNECT|" "$ql")" &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	$AGREE xlsx-table $b.xlsx 2 $b-per-queue.csv &&
	$AGREE xlsx-table $b.xlsx 3 $b-per-interval.csv &&
	$AGREE pdf-rows queue-service.txt $b-per-queue.csv --percents service_level,abandon_rate
'

test_expect_success 'agent performance: answered per agent = CONNECTs in queue_log; formats agree' '
	b=$(base agent-performance) && ql=$(dirname "$(capture_path s04_queue)")/queue_log &&
	for a in $(awk -F"|" "\$5 == \"CONNECT\" { print \$4 }" "$ql" | sort -u); do
		test "$($AGREE csv-get $b-per-agent.csv agent $a answered)" = "$(grep -c "|$a|CONNECT|" "$ql")" || return 1
	done &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	$AGREE xlsx-table $b.xlsx 2 $b-per-agent.csv &&
	$AGREE pdf-rows agent-performance.txt $b-per-agent.csv --durations talk_time,avg_talk --percents occupancy
'

test_expect_success 'QoS: measured legs, worst MOS and the MOS bands = qos_leg; formats agree' '
	b=$(base qos) &&
	test "$($AGREE csv-get $b-totals.csv - - "Measured legs")" = "$(q "select count(*) from qos_leg where mos is not null")" &&
	test "$($AGREE csv-get $b-totals.csv - - "Worst MOS")" = "$(q "select round(min(mos)::numeric, 2) from qos_leg")" &&
	test "$(awk -F, "NR > 1 { n += \$2 } END { print n }" $b-mos-distribution.csv)" = \
		"$(q "select count(*) from qos_leg where mos is not null")" &&
	test "$(sed -n 2p $b-worst-calls.csv | cut -d, -f7 | tr -d "\r")" = "$(q "select round(min(worst_mos)::numeric, 2) from call")" &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	$AGREE xlsx-table $b.xlsx 2 $b-worst-calls.csv &&
	$AGREE xlsx-table $b.xlsx 3 $b-worst-trunks.csv &&
	$AGREE pdf-rows qos.txt $b-worst-trunks.csv
'

test_expect_success 'fraud digest: indicators = SQL; without an alert table the section says so in every format' '
	b=$(base fraud-digest) &&
	test "$($AGREE csv-get $b-totals.csv - - "Outbound carrier legs")" = \
		"$(q "select count(*) from cdr where carrier is not null and direction = '"'"'outbound'"'"'")" &&
	if [ "$(q "select to_regclass('"'"'alert'"'"') is null")" = t ]; then
		grep -q "Not available: this database has no \"\"alert\"\"" $b-alerts.csv &&
		grep -q "Not available: this database has no \"alert\"" fraud-digest.txt &&
		grep -q "does not exist, the report says so" fraud-digest.err
	else # a schema with the fraud engine (migration 0008): its alerts are listed
		head -1 $b-alerts.csv | grep -q "^\"created_at\",\"severity\",\"rule\"" &&
		test "$(($(wc -l <$b-alerts.csv) - 1))" = "$(q "select count(*) from alert")"
	fi &&
	$AGREE xlsx-kpis $b.xlsx $b-totals.csv &&
	$AGREE xlsx-table $b.xlsx 2 $b-top-destinations.csv &&
	$AGREE pdf-rows fraud-digest.txt $b-top-destinations.csv --durations billsec
'

test_expect_success 'CDR export: one CSV row per leg of the period, in order; tenant filter' '
	f=$(base cdr-export).csv &&
	test "$(($(wc -l <$f) - 1))" = "$(q "select count(*) from cdr")" &&
	head -1 $f | grep -q "^\"calldate\",\"answer\",\"end\",\"node\",\"uniqueid\"" &&
	$AGREE xlsx-table $(base cdr-export).xlsx 2 $f &&
	report run cdr-export --from "$DAY" --param tenant=tenantA -o tA >/dev/null &&
	test "$(($(wc -l <tA/cdr-export-tenantA-$DAY-$DAY.csv) - 1))" = "$(q "select count(*) from cdr where tenant = '"'"'tenantA'"'"'")"
'

# the header, then psql's rows (its output ends with one newline too many)
cdr_ref() {
	printf '"calldate","answer","end","node","uniqueid","linkedid","call_id","clid","src","dst","dcontext","channel","dstchannel","lastapp","lastdata","duration","billsec","disposition","accountcode","userfield","tenant","direction","src_e164","dst_e164","carrier","rate_status","buy_cost","sell_cost","margin"\r\n' >"$1" &&
	PGTZ=$2 psql -XAtq -v ON_ERROR_STOP=1 -v day="$DAY" -v tenant="$3" -f cdr-ref.sql >"$1.rows" &&
	head -c -1 "$1.rows" >>"$1"
}

test_expect_success 'CDR export: the CSV is byte for byte what the server computes (UTC; New York with a tenant)' '
	cdr_ref ref-utc.csv UTC "" &&
	test "$(grep -c "\"" ref-utc.csv)" -gt 100 &&
	cmp ref-utc.csv $(base cdr-export).csv &&
	report run cdr-export --from "$DAY" --tz America/New_York --param tenant=tenantA -f csv -o nyc >/dev/null &&
	cdr_ref ref-nyc.csv America/New_York tenantA &&
	test "$(wc -l <ref-nyc.csv)" -gt 10 &&
	cmp ref-nyc.csv nyc/cdr-export-tenantA-$DAY-$DAY.csv
'

test_expect_success 'parameters are bind parameters: a quote in a value is data, not SQL' '
	report run daily-traffic --from "$DAY" -f csv -o inj --param "tenant=x'"'"' OR 1=1 --" >/dev/null &&
	test "$($AGREE csv-get inj/daily-traffic-x__OR_1_1_---$DAY-$DAY-totals.csv - - Legs)" = 0 &&
	report run daily-traffic --from "$DAY" -f csv -o tb --param tenant=tenantB >/dev/null &&
	test "$($AGREE csv-get tb/daily-traffic-tenantB-$DAY-$DAY-totals.csv - - Legs)" = "$(q "select count(*) from cdr where tenant = '"'"'tenantB'"'"'")"
'

test_expect_success 'periods: named ones resolve in the time zone; a day in another zone is another window' '
	report run qos -f csv -o p1 --from today >p1.paths &&
	grep -q "qos-$(date -u +%F)-$(date -u +%F)-totals.csv" p1.paths &&
	report run qos -f csv -o p2 --from yesterday >p2.paths &&
	grep -q "qos-$(date -u -d yesterday +%F)-" p2.paths &&
	report run daily-traffic -f csv -o p3 --from "$DAY..$DAY" >p3.paths &&
	grep -q "daily-traffic-$DAY-$DAY-totals.csv" p3.paths &&
	report run daily-traffic -f csv -o p4 --from "$DAY 19:16" --to "$DAY 19:18:30" >p4.paths &&
	grep -q "daily-traffic-${DAY}T1916-${DAY}T1918-totals.csv" p4.paths &&
	test "$($AGREE csv-get p4/daily-traffic-${DAY}T1916-${DAY}T1918-totals.csv - - Legs)" = \
		"$(q "select count(*) from cdr where calldate >= '"'"'$DAY 19:16+00'"'"' and calldate < '"'"'$DAY 19:18:30+00'"'"'")" &&
	# UTC+14: local day $DAY ends at 10:00 UTC, before the captures; they fall on the next local day
	next=$(date -u -d "$DAY + 1 day" +%F) &&
	report run daily-traffic -f csv -o kiri --tz Pacific/Kiritimati --from "$DAY" >/dev/null &&
	test "$($AGREE csv-get kiri/daily-traffic-$DAY-$DAY-totals.csv - - Legs)" = \
		"$(q "select count(*) from cdr where calldate >= '"'"'$DAY 00:00+14'"'"' and calldate < '"'"'$next 00:00+14'"'"'")" &&
	report run daily-traffic -f csv -o kiri --tz Pacific/Kiritimati --from "$next" >/dev/null &&
	test "$($AGREE csv-get kiri/daily-traffic-$next-$next-totals.csv - - Legs)" = \
		"$(q "select count(*) from cdr where calldate >= '"'"'$next 00:00+14'"'"' and calldate < '"'"'$next 00:00+14'"'"'::timestamptz + interval '"'"'1 day'"'"'")" &&
	test "$($AGREE csv-get kiri/daily-traffic-$DAY-$DAY-totals.csv - - Legs)" != \
		"$($AGREE csv-get kiri/daily-traffic-$next-$next-totals.csv - - Legs)"
'

test_expect_success 'a preferred source whose relation is missing falls back to the base query' '
	report run bad/prefer.yaml --from "$DAY" -f csv -o pref >/dev/null 2>pref.err &&
	test "$(sed -n 2p pref/prefer-$DAY-$DAY.csv | tr -d "\r")" = "$(q "select count(*) from cdr")" &&
	grep -q "base tables" pref.err
'

test_expect_success 'pdf_max_rows limits its own table in the PDF and HTML, not the others; the CSV has every row' '
	report run bad/max-rows.yaml --from "$DAY" -f pdf,html,csv -o maxr >/dev/null &&
	pdftotext -layout maxr/max-rows-$DAY-$DAY.pdf maxr.txt &&
	for f in maxr.txt maxr/max-rows-$DAY-$DAY.html; do
		grep -q "first-3" $f && ! grep -q "first-4" $f &&
		grep -q "second-7" $f &&
		test "$(grep -c "more rows are not shown here" $f)" = 1 &&
		grep -q "4 more rows are not shown here" $f || { echo "$f: the limits are wrong"; return 1; }
	done &&
	test "$(grep -c "first-" maxr/max-rows-$DAY-$DAY-limited.csv)" = 7
'

test_expect_success 'exit codes: template not found 66, bad template 65 (file:line:col), usage 64' '
	test_exit_code 66 report run no-such-template --from "$DAY" 2>err && grep -q "not found" err &&
	test_exit_code 65 report run bad/unknown-key.yaml --from "$DAY" 2>err &&
	grep -q "unknown-key.yaml:5:5: unknown key \"colums\"" err &&
	test_exit_code 65 report run bad/unknown-param.yaml --from "$DAY" 2>err &&
	grep -q "unknown-param.yaml:7:[0-9]*: unknown parameter \":tenat\"" err &&
	test_exit_code 64 report run qos --from "$DAY" --param nosuch=1 2>err && grep -q "no such parameter" err &&
	test_exit_code 64 report run qos --from "$DAY" --param worst=many 2>err && grep -q "not a valid int" err &&
	test_exit_code 64 report run queue-service --from "$DAY" --param interval=sometimes 2>err &&
	test_exit_code 64 report run qos --from "last-fortnight" 2>err && grep -q "bad period" err &&
	test_exit_code 64 report run qos --from 2026-02-30 2>err && grep -q "bad period" err &&
	test_exit_code 64 report run qos --from "$DAY" --tz Mars/Olympus 2>err && grep -q "unknown time zone" err &&
	test_exit_code 64 report run qos --from "$DAY" --format pdf,docx 2>err &&
	test_exit_code 64 report run qos --from "$DAY" --db "host=/nowhere password=hunter2" 2>err &&
	! grep -q hunter2 err &&
	test_exit_code 64 report run &&
	test_exit_code 64 report frobnicate &&
	test_exit_code 64 report run qos --from "$DAY" --deliver 2>err && grep -q "deliver" err
'

test_expect_success 'exit codes: database unreachable 69, missing relation 78, output not creatable 73, bad config 78' '
	mkdir nodb &&
	test_exit_code 69 env PGHOST="$TRASH/nodb" "$REPORT" -c report.yaml run qos --from "$DAY" 2>err &&
	grep -q "cannot connect" err &&
	test_exit_code 78 report run bad/needs-table.yaml --from "$DAY" 2>err &&
	grep -q "needs relation \"no_such_rollup_v\"" err &&
	: >afile &&
	test_exit_code 73 report run qos --from "$DAY" -o afile/sub 2>err &&
	printf "report:\n  paper: a5\n" >badcfg.yaml &&
	test_exit_code 78 "$REPORT" -c badcfg.yaml list 2>err && grep -q "badcfg.yaml:2:10: report.paper" err &&
	printf "report:\n  colour: red\n" >badcfg2.yaml &&
	test_exit_code 78 "$REPORT" -c badcfg2.yaml list 2>err && grep -q "unknown key \"report.colour\"" err &&
	test_exit_code 66 "$REPORT" -c nosuch.yaml list
'

test_expect_success 'a run that fails part-way leaves no file behind (not even the first section'"'"'s)' '
	test_exit_code 65 report run bad/fails-late.yaml --from "$DAY" -o late 2>err &&
	grep -q "division by zero" err &&
	test "$(ls -A late | wc -l)" = 0
'

test_expect_success '--help, --version, --paper letter' '
	"$REPORT" --help >help && grep -q "^usage: cdrflow-report run TEMPLATE" help &&
	test "$("$REPORT" --version)" = "cdrflow-report $(cat "$TEST_ROOT/VERSION")" &&
	report run qos --from "$DAY" -f pdf --paper letter -o letter >/dev/null &&
	pdfinfo letter/qos-$DAY-$DAY.pdf | grep -q "612 x 792 pts (letter)"
'

# ------------------------------------------------------------ streaming
test_expect_success GNU_TIME 'CDR export streams: 1 M legs to CSV in bounded memory' '
	q "select cdrflow_ensure_month('"'"'2031-01-15'"'"')" >/dev/null &&
	q "insert into cdr (calldate, answer, \"end\", src, dst, dcontext, channel, dstchannel, lastapp, duration, billsec,
	     disposition, uniqueid, linkedid, node, tenant, direction, buy_cost, sell_cost, margin)
	   select t, t + interval '"'"'2 s'"'"', t + interval '"'"'62 s'"'"', '"'"'1001'"'"', '"'"'+4420794601'"'"' || (i % 100),
	     '"'"'internal'"'"', '"'"'SIP/a-'"'"' || i, '"'"'SIP/loop-'"'"' || i, '"'"'Dial'"'"', 62, 60, '"'"'ANSWERED'"'"',
	     '"'"'syn-'"'"' || i, '"'"'syn-'"'"' || i, '"'"'synth'"'"', '"'"'tenantS'"'"', '"'"'outbound'"'"', 1234, 2345, 1111
	   from generate_series(1, 1000000) i, lateral (select timestamptz '"'"'2031-01-01 00:00+00'"'"' + i * interval '"'"'2 s'"'"' as t) x" &&
	start=$(date +%s.%N) &&
	/usr/bin/time -v -o rss.txt "$REPORT" -c report.yaml run cdr-export --from 2031-01 -f csv -o big >big.paths 2>big.err &&
	end=$(date +%s.%N) &&
	f=big/cdr-export-2031-01-01-2031-01-31.csv &&
	test "$(wc -l <$f)" = 1000001 &&
	tail -1 $f | grep -q "\"syn-1000000\"" &&
	test "$(awk -F, "NR > 1 && \$17 != 60" $f | wc -l)" = 0 &&
	rss=$(sed -n "s/.*Maximum resident set size (kbytes): //p" rss.txt) &&
	echo "1000000 rows: $(echo "1000000 / ($end - $start)" | bc) rows/s, peak RSS ${rss} kB" &&
	{ ! test_have_prereq NOT_SANITIZED || test "$rss" -lt 32768; }
'

test_done

#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='the metric dictionary: cdrflow-query stats and every report template that shows a metric give the same figure, for the same period arguments'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
Q=$CDRFLOW_BUILD/cdrflow-query
REPORT=$CDRFLOW_BUILD/cdrflow-report
for b in "$ETL" "$Q" "$REPORT"; do [ -x "$b" ] || bail_out "no $b (run make)"; done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s04_queue >/dev/null || bail_out "captures not found"
AGREE="$PYTHON $TEST_ROOT/tests/metrics/metric-agree.py"
DOC=$TEST_ROOT/docs/metrics.md

start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }

# tenants, a carrier trunk and decks whose rates give sub-cent costs (the
# display rounding is part of what must agree)
cat >buy.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.5035,,60/60,,2020-01-01,
8823,Premium satellite,1.2017,0.0503,1/1,,2020-01-01,
239,Sao Tome,0.3011,,30/6,3,2020-01-01,
447,UK mobile,0.0207,,60/1,,2020-01-01,
CSV
cat >sell.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.9055,,60/60,,2020-01-01,
88239,Premium satellite,2.4013,0.1005,1/1,,2020-01-01,
239,Sao Tome,0.4525,,60/60,,2020-01-01,
44,UK,0.0315,,60/60,,2020-01-01,
CSV
sed "s|@DECKS@|$PWD|g" "$TEST_ROOT/tests/data/tenants-rating.yaml" >etl.yaml
cat >>etl.yaml <<YAML
report:
  templates_dir: $TEST_ROOT/templates
  out_dir: out
  tz: UTC
YAML
SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s03b_sip_rtp_impaired s04_queue s05_transfer s07_trunk_tenant"

test_expect_success 'load several captures with tenants and rating' '
	for s in $SCENARIOS; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >load.out &&
	test "$(q "select count(*) from cdr where sell_cost > 0")" -gt 0 &&
	test "$(q "select count(*) from cdr where sell_cost % 10000 <> 0")" -gt 0 &&
	DAY=$(q "select min(calldate)::date from cdr") &&
	test "$DAY" = "$(q "select max(calldate)::date from cdr")" &&
	echo "$DAY" >day
'
DAY=$(cat day 2>/dev/null)
NEXT=$(q "select date '$DAY' + 1" 2>/dev/null)
PERIOD="--from $DAY --to $NEXT --tz UTC"

test_expect_success 'query stats: the rollup and the legs give the same rows for every key' '
	for by in hour day tenant trunk destination; do
		"$Q" stats --by $by $PERIOD -f csv --source rollup >r-$by.csv &&
		"$Q" stats --by $by $PERIOD -f csv --source base >b-$by.csv &&
		test_cmp b-$by.csv r-$by.csv || return 1
	done
'

test_expect_success 'the dictionary names a stats column and a report cell for the shown metrics' '
	for m in legs "answered legs" "billed time" calls "answer rate" "sell cost" "buy cost" margin "rated legs" ASR ACD attempts; do
		grep -q "^| $m" "$DOC" || { echo "no row for $m"; return 1; }
	done
'

test_expect_success 'query stats and the report templates agree on every metric, for the day and each tenant' '
	mkdir -p qs rs/all &&
	"$Q" stats --by day $PERIOD -f csv >qs/day.csv &&
	"$Q" stats --by tenant $PERIOD -f csv >qs/tenant.csv &&
	templates=$(sed -n "/^## The metric dictionary/,/^## /p" "$DOC" | grep "^| " | cut -d"|" -f5 | grep -o "\`[a-z-]*/[a-z-]*/" | tr -d "\`" | cut -d/ -f1 | sort -u) &&
	test -n "$templates" &&
	for t in $templates; do
		if grep -q "required: yes" "$TEST_ROOT/templates/$t.yaml"; then continue; fi # one tenant only
		"$REPORT" -c etl.yaml run $t --from "$DAY" -f csv -o rs/all >/dev/null || return 1
	done &&
	for tn in tenantA tenantB; do
		mkdir -p rs/$tn &&
		"$Q" stats --by day $PERIOD --tenant $tn -f csv >qs/day-$tn.csv &&
		for t in $templates; do
			"$REPORT" -c etl.yaml run $t --from "$DAY" -f csv,html -o rs/$tn --param tenant=$tn >/dev/null || return 1
		done || return 1
	done &&
	$AGREE "$DOC" qs rs >agree.out &&
	cat agree.out &&
	grep -q "^ok answer rate: daily-traffic/totals/Answer rate" agree.out &&
	grep -q "^ok sell cost: tenant-billing/by-tenant/sell_cost" agree.out &&
	grep -q "^ok sell cost: tenant-statement/totals/Charges" agree.out &&
	grep -q "^ok margin: operator-margin/totals/Margin" agree.out
'

test_expect_success 'the HTML format shows the same figures: tiles of each tenant = query stats' '
	for tn in tenantA tenantB; do
		sell=$(sed -n 2p qs/day-$tn.csv | tr -d "\r" | cut -d, -f7) &&
		test "$($PYTHON "$TEST_ROOT/tests/report/pages.py" tile rs/$tn/tenant-statement-$tn-*.html Charges)" = "$sell GBP" &&
		test "$($PYTHON "$TEST_ROOT/tests/report/pages.py" tile rs/$tn/daily-traffic-$tn-*.html "Sell cost")" = "$sell GBP" &&
		test "$($PYTHON "$TEST_ROOT/tests/report/pages.py" tile rs/$tn/daily-traffic-$tn-*.html Legs)" = \
			"$(sed -n 2p qs/day-$tn.csv | tr -d "\r" | cut -d, -f8)" || return 1
	done
'

test_expect_success 'the checker itself fails when a template disagrees' '
	cp -r rs bad &&
	f=$(ls bad/all/daily-traffic-*-totals.csv) &&
	"$PYTHON" -c "import csv,sys; r=list(csv.reader(open(sys.argv[1]))); r[1][0]=str(int(r[1][0])+1); csv.writer(open(sys.argv[1],\"w\",newline=\"\")).writerows(r)" "$f" &&
	! $AGREE "$DOC" qs bad >/dev/null 2>err &&
	grep -q "^FAIL: legs" err
'

test_expect_success 'money: full precision in the warehouse, the rates decimals on display, the same rounding everywhere' '
	micro=$(q "select sum(sell_cost) from cdr where call_id is not null") &&
	test "$(q "select metric_money_scale()")" = 4 &&
	test "$(sed -n 2p qs/day.csv | tr -d "\r" | cut -d, -f7)" = "$(q "select round($micro / 1000000.0, 4)")" &&
	test "$(q "select metric_money(2675000, 2), metric_money(-2675000, 2), metric_money(2674999, 2)")" = "2.68|-2.68|2.67" &&
	test "$(q "select metric_money(26750), metric_money(-40), metric_money(-40, 2)")" = "0.0268|-0.000040|-0.000040" &&
	test "$(q "select metric_pct(metric_asr(1, 16)), metric_pct(metric_answer_rate(0, 0)) is null")" = "6.3|t"
'

test_expect_success 'one period parser: the same --from/--to give the same period in query and report' '
	while IFS="|" read -r from to lo hi lbl; do
		set -- --from "$from" && if [ -n "$to" ]; then set -- "$@" --to "$to"; fi &&
		"$Q" stats --by day "$@" --tz UTC -v -f csv >/dev/null 2>p.err &&
		grep -q "period \\[$lo 00:00:00+00, $hi 00:00:00+00) tz UTC" p.err &&
		"$REPORT" -c etl.yaml run daily-traffic "$@" -f csv -o per >paths &&
		grep -q "daily-traffic-$lbl-totals.csv" paths || { echo "$from $to:"; cat p.err paths; return 1; }
	done <<-EOF &&
	2026-11-21||2026-11-21|2026-11-22|2026-11-21-2026-11-21
	2026-11-21|2026-11-21|2026-11-21|2026-11-22|2026-11-21-2026-11-21
	2026-11-20|2026-11-21|2026-11-20|2026-11-22|2026-11-20-2026-11-21
	2026-11||2026-11-01|2026-12-01|2026-11-01-2026-11-30
	2026-11-20..2026-11-21||2026-11-20|2026-11-22|2026-11-20-2026-11-21
	EOF
	test_exit_code 64 "$Q" stats --by day --from 2026-02-30 2>bad.err && grep -q "not a valid date" bad.err &&
	test_exit_code 64 "$REPORT" -c etl.yaml run daily-traffic --from 2026-02-30 2>bad2.err && grep -q "not a valid date" bad2.err &&
	test_exit_code 64 "$Q" stats --by day --from 2026-11-22 --to 2026-11-21 2>e.err && grep -q "empty period" e.err &&
	"$Q" stats --by day --period last-month -v -f csv >/dev/null 2>lm.err &&
	grep -q "period \\[$(date -u -d "$(date -u +%Y-%m-15) -1 month" +%Y-%m)-01 00:00:00+00" lm.err
'

test_expect_success 'query stats without the dictionary (migration 0016): exit 78 and what to run' '
	psql -qc "alter view metric_call_v rename to metric_call_v_away" &&
	test_exit_code 78 "$Q" stats --by day $PERIOD 2>no-dict.err &&
	psql -qc "alter view metric_call_v_away rename to metric_call_v" &&
	grep -q "0016.*cdrflow-etl migrate" no-dict.err
'

test_done

#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='tenants, E.164 numbers, direction and rating of every leg (s07 trunk and tenant capture)'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
[ -x "$ETL" ] || bail_out "no $ETL (run make)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
S07=$(capture_path s07_trunk_tenant) || bail_out "captures not found"

PGDIR=$(mktemp -d /tmp/cdrflow-t4200.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
test_at_exit '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"'
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }
EXPECT=$TEST_ROOT/tests/rating/expect-costs.py

cat >buy.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.50,,60/60,,2020-01-01,
8823,Premium satellite,1.20,0.05,1/1,,2020-01-01,
239,Sao Tome,0.30,,30/6,3,2020-01-01,
447,UK mobile,0.02,,60/1,,2020-01-01,
CSV
cat >sell-a.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.90,,60/60,,2020-01-01,
88239,Premium satellite,2.40,0.10,1/1,,2020-01-01,
239,Sao Tome,0.45,,60/60,,2020-01-01,
CSV
cat >buy-b.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
88,International networks,0.40,,1/1,,2020-01-01,
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
  allowances:
    - tenant: tenantA
      minutes: 2
numbering:
  - country_code: "44"
    national_prefix: "0"
    international_prefix: "00"
  - tenant: tenantB
    country_code: "31"
    strip_prefixes: "9"
rating:
  buy:
    - carrier: loopcarrier
      deck: $PWD/buy.csv
      trunk: "SIP/loop-*"
    - carrier: cheapcarrier
      deck: $PWD/buy-b.csv
      trunk: "DAHDI/never-*"
  sell:
    - tenant: tenantA
      deck: $PWD/sell-a.csv
YAML

test_expect_success 'load s07 with tenants, numbering and rating configured' '
	"$TEST_ROOT/tests/truth/strip-cdr.py" "$S07" s07.raw &&
	cdrflow_collector --replay s07.raw --spool spool --node pbx >/dev/null &&
	"$ETL" --once -c etl.yaml --spool spool >out &&
	grep "^etl: .* legs=43 " out
'

test_expect_success 'every leg gets the tenant its accountcode or context names' '
	test "$(q "select count(*) from cdr where accountcode = '"'"'tenantA'"'"' and tenant is distinct from '"'"'tenantA'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where accountcode = '"'"'tenantB'"'"' and tenant is distinct from '"'"'tenantB'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where dcontext = '"'"'carrier'"'"' and accountcode = '"'"''"'"'")" -gt 0 &&
	test "$(q "select count(*) from cdr where dcontext = '"'"'carrier'"'"' and accountcode = '"'"''"'"' and tenant is distinct from '"'"'carrier'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where accountcode = '"'"'carrier-sim'"'"' and tenant is not null")" = 0
'

test_expect_success 'direction: trunk channel in = inbound, trunk dstchannel = outbound' '
	test "$(q "select count(*) from cdr where channel like '"'"'SIP/loop-%'"'"' and direction <> '"'"'inbound'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where channel not like '"'"'SIP/loop-%'"'"' and dstchannel like '"'"'SIP/loop-%'"'"' and direction <> '"'"'outbound'"'"'")" = 0 &&
	test "$(q "select count(*) from cdr where direction = '"'"'outbound'"'"'")" -ge 8 &&
	test "$(q "select count(*) from cdr where channel not like '"'"'SIP/loop-%'"'"' and dstchannel not like '"'"'SIP/loop-%'"'"' and direction <> '"'"'internal'"'"'")" = 0
'

test_expect_success 'numbers become E.164 under the tenant plan, originals kept' '
	test "$(q "select dst_e164 from cdr where dst = '"'"'00881631234567'"'"' limit 1")" = "+881631234567" &&
	test "$(q "select dst_e164 from cdr where dst = '"'"'+442079460101'"'"' limit 1")" = "+442079460101" &&
	test "$(q "select src_e164 from cdr where src = '"'"'+4930901820'"'"' limit 1")" = "+4930901820" &&
	test "$(q "select count(*) from cdr where src = '"'"'1001'"'"' and src_e164 is not null")" = 0 &&
	test "$(q "select count(*) from cdr where dst = '"'"'talk'"'"' and dst_e164 is not null")" = 0
'

test_expect_success 'international: outside the home country of the tenant plan (GB; NL for tenantB)' '
	test "$(q "select dst_intl from cdr where dst = '"'"'00881631234567'"'"' limit 1")" = t &&
	test "$(q "select dst_intl from cdr where dst = '"'"'+442079460101'"'"' and tenant is distinct from '"'"'tenantB'"'"' limit 1")" = f &&
	test "$(q "select src_intl from cdr where src = '"'"'+4930901820'"'"' limit 1")" = t &&
	q "select tenant, dst_e164, dst_country, dst_intl from cdr where dst_e164 is not null" >intl.rows &&
	test -s intl.rows &&
	test "$(q "select count(*) from cdr where dst_e164 is not null and dst_intl is distinct from
		   (dst_country is distinct from case when tenant = '"'"'tenantB'"'"' then '"'"'NL'"'"' else '"'"'GB'"'"' end)")" = 0 &&
	test "$(q "select count(*) from cdr where dst_e164 is null and dst_intl")" = 0
'

test_expect_success 'outbound carrier legs: buy and sell cost as the decks say, margin = sell - buy' '
	q "select dst_e164, billsec, extract(epoch from calldate)::bigint, tenant, rate_status,
		coalesce(buy_cost::text, '"'"'-'"'"'), coalesce(sell_cost::text, '"'"'-'"'"'), coalesce(margin::text, '"'"'-'"'"')
		from cdr where carrier = '"'"'loopcarrier'"'"'" | tr "|" " " >rated &&
	test $(wc -l <rated) -ge 8 &&
	while read -r num bill start tenant status buy sell margin; do
		digits=${num#+} &&
		eb=$("$EXPECT" buy.csv "$digits" "$bill" "$start") &&
		if [ "$tenant" = tenantA ]; then es=$("$EXPECT" sell-a.csv "$digits" "$bill" "$start"); else es=none; fi &&
		if [ "$bill" = 0 ]; then
			test "$status $buy $sell $margin" = "not_billable 0 0 0"
		elif [ "$eb" = none ]; then
			test "$status $buy" = "no_buy_rate -"
		elif [ "$es" = none ]; then
			test "$status $buy $margin" = "no_sell_rate ${eb#* } -"
		else
			test "$status $buy $sell $margin" = "rated ${eb#* } ${es#* } $(( ${es#* } - ${eb#* } ))"
		fi || { echo "leg $num $bill s $tenant: got $status $buy $sell $margin, deck says buy=$eb sell=$es"; return 1; }
	done <rated &&
	grep -q "^+8823" rated && grep -q "rated" rated && grep -q "no_sell_rate" rated && grep -q "not_billable" rated
'

test_expect_success 'legs that did not leave by a carrier are not rated (not silently zero)' '
	test "$(q "select count(*) from cdr where carrier is null and (rate_status is not null or buy_cost is not null)")" = 0
'

# The call facts come from the ETL (lib/callgroup.c, fed by etl/legclass.c):
# they must equal this statement of the rule over the stored legs.
cat >facts.sql <<'SQL'
SELECT count(*) FROM call k JOIN (
  SELECT l.call_id, l.node,
         (array_agg(l.tenant ORDER BY l.sequence) FILTER (WHERE l.tenant IS NOT NULL))[1] AS tenant,
         CASE WHEN bool_or(l.direction = 'inbound') THEN 'inbound'
              WHEN bool_or(l.direction = 'outbound') THEN 'outbound'
              WHEN bool_or(l.direction = 'internal') THEN 'internal' ELSE 'unknown' END AS direction,
         sum(l.buy_cost) AS buy, sum(l.sell_cost) AS sell,
         coalesce((array_agg(l.trunk ORDER BY l.sequence) FILTER (WHERE l.trunk <> ''))[1], '') AS trunk,
         (array_agg(l.dst_country ORDER BY l.sequence) FILTER (WHERE l.dst_country IS NOT NULL))[1] AS country
  FROM cdr l GROUP BY l.call_id, l.node) s ON s.call_id = k.call_id AND s.node = k.node
WHERE (k.tenant, k.direction, k.buy_cost, k.sell_cost, k.trunk, k.dst_country)
      IS DISTINCT FROM (s.tenant, s.direction, s.buy, s.sell, s.trunk, s.country)
SQL

test_expect_success 'calls carry tenant, direction and the sum of their legs'"'"' costs' '
	test "$(q "select count(*) from call where direction = '"'"'unknown'"'"'")" = 0 &&
	test "$(q "select count(*) from call c where buy_cost is distinct from (select sum(buy_cost) from cdr where call_id = c.call_id)")" = 0 &&
	test "$(psql -At -f facts.sql)" = 0 &&
	test "$(q "select count(*) from call where tenant is not null and trunk <> '"'"''"'"'")" -gt 0 &&
	test "$(q "select count(*) from call where tenant = '"'"'tenantA'"'"' and direction = '"'"'outbound'"'"'")" -ge 3
'

test_expect_success 'allowances from the configuration; minutes used per tenant and month' '
	test "$(q "select minutes from tenant_allowance where tenant = '"'"'tenantA'"'"'")" = 2 &&
	used=$(q "select sum((billsec + 59) / 60) from cdr where tenant = '"'"'tenantA'"'"' and carrier is not null and billsec > 0") &&
	test "$(q "select minutes || '"'"' '"'"' || allowance from tenant_usage where tenant = '"'"'tenantA'"'"'")" = "$used 2"
'

test_expect_success 'QoS: a direction without any RTCP report has unknown loss and MOS, not 100 %' '
	test "$(q "select count(*) from qos_leg where reports = 0")" -gt 0 &&
	test "$(q "select count(*) from qos_leg where reports = 0 and (loss_pct is not null or mos is not null)")" = 0
'

test_expect_success 'LCR what-if: each deck'"'"'s total is what its rates make of the same legs' '
	"$ETL" lcr -c etl.yaml --from 2020-01-01 --to 2100-01-01 >lcr &&
	cat lcr &&
	q "select coalesce(ltrim(dst_e164, '"'"'+'"'"'), dst), billsec, extract(epoch from calldate)::bigint from cdr
		where carrier is not null and billsec > 0" | tr "|" " " >legs &&
	test $(wc -l <legs) -ge 5 &&
	for deck in buy buy-b; do
		total=0 rated=0 &&
		while read -r num bill start; do
			e=$("$EXPECT" $deck.csv "$num" "$bill" "$start") &&
			if [ "$e" != none ]; then total=$((total + ${e#* })) rated=$((rated + 1)); fi || return 1
		done <legs &&
		name=$([ $deck = buy ] && echo loopcarrier || echo cheapcarrier) &&
		line=$(grep "^$name " lcr) &&
		set -- $line &&
		test "$(printf "%d.%06d" $((total / 1000000)) $((total % 1000000)))" = "$2" &&
		test "$rated" = "$3" || return 1
	done &&
	grep -q "^lcr: $(wc -l <legs) carrier legs" lcr
'

test_expect_success 'lcr: a bad period is a usage error (64)' '
	test_exit_code 64 "$ETL" lcr -c etl.yaml --from yesterdayish --to 2100-01-01 2>err &&
	test_exit_code 64 "$ETL" lcr -c etl.yaml --from 2020-01-01
'

test_expect_success 'the allowance alert falls back to tenants.allowances (one place to configure it)' '
	test "$(q "select fraud_tenant_limit_value('"'"'tenantA'"'"', '"'"'allowance_minutes'"'"')")" = 2 &&
	test "$(q "select fraud_tenant_limit_value('"'"'nobody'"'"', '"'"'allowance_minutes'"'"') is null")" = t &&
	q "insert into fraud_tenant_limit (tenant, allowance_minutes) values ('"'"'tenantA'"'"', 7)" >/dev/null &&
	test "$(q "select fraud_tenant_limit_value('"'"'tenantA'"'"', '"'"'allowance_minutes'"'"')")" = 7 &&
	q "delete from fraud_tenant_limit where tenant = '"'"'tenantA'"'"'" >/dev/null
'

test_expect_success 'a deck that does not load is a configuration error (78), nothing loaded' '
	sed "s#$PWD/buy.csv#$PWD/missing.csv#" etl.yaml >bad.yaml &&
	test_exit_code 78 "$ETL" --once -c bad.yaml --spool spool 2>err &&
	grep -q "missing.csv" err
'

test_done

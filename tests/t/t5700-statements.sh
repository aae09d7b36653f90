#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='tenant statements: --each tenant writes every tenant statement (tenant name, currency and file name per tenant), never another tenant rows or the operator costs (also as a tenant reader under RLS), mailed to each tenant own recipients; operator-margin; money at the rates precision'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
for b in "$ETL" "$REPORT"; do [ -x "$b" ] || bail_out "no $b (run make)"; done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed (scripts/install-deps.sh)"
command -v pdftotext >/dev/null || bail_out "pdftotext is not installed (poppler-utils, scripts/install-deps.sh)"
capture_path s07_trunk_tenant >/dev/null || bail_out "captures not found"
SMTP_PY=
for p in /usr/bin/python3 "$PYTHON"; do
	if "$p" -c 'import aiosmtpd' 2>/dev/null; then SMTP_PY=$p; break; fi
done
[ -n "$SMTP_PY" ] || bail_out "python3-aiosmtpd is not installed (scripts/install-deps.sh)"

start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }

# the decks of t5600 (sub-cent rates: four decimals)
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
"$PYTHON" - etl.yaml <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("tenants:\n", "tenants:\n  profiles:\n    - tenant: tenantA\n      name: \"Acme Trading Ltd\"\n"
              "    - tenant: tenantB\n      name: \"Borealis Logistics GmbH\"\n", 1)
open(p, "w").write(s)
PY
profiles() { q "select tenant, coalesce(name, '-'), currency, money_scale from tenant_profile order by 1"; }
SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s04_queue s05_transfer s07_trunk_tenant"

test_expect_success 'load the captures; the profiles: names, currency and the decks decimals' '
	for s in $SCENARIOS; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >load.out &&
	test "$(profiles)" = "tenantA|Acme Trading Ltd|GBP|4
tenantB|Borealis Logistics GmbH|GBP|4" &&
	test "$(q "select carrier, currency, money_scale from carrier_profile")" = "loopcarrier|GBP|4" &&
	test "$(q "select metric_money_scale(), metric_currency()")" = "4|GBP" &&
	DAY=$(q "select min(calldate)::date from cdr") && echo "$DAY" >day
'
DAY=$(cat day 2>/dev/null)

test_expect_success 'a bad currency code is a configuration error (78)' '
	sed "s/currency: GBP/currency: pounds/" etl.yaml >bad.yaml &&
	test_exit_code 78 "$ETL" --once -c bad.yaml --spool spool 2>bad.err &&
	grep -q "not an ISO 4217 code" bad.err
'

cat >r.yaml <<YAML
report:
  templates_dir: $TEST_ROOT/templates
  tz: UTC
  tenants:
    - tenant: tenantA
      recipients: "Acme AP <ap@acme.example>"
    - tenant: tenantB
      recipients: "billing@borealis.example, Finance <fin@borealis.example>"
    - tenant: carrier
      recipients: "noc@carrier.example"
YAML

# owner's figures of one tenant's sell side, from the warehouse (rollup_leg_v)
sell_of() { q "select metric_money(coalesce(sum(sell_cost), 0)) from rollup_leg_v where tenant = '$1' and calldate::date = '$DAY'"; }
count_of() { q "select count(sell_cost) from rollup_leg_v where tenant = '$1' and calldate::date = '$DAY'"; }

test_expect_success '--each tenant: every tenant statement in one run, the tenant in each file name and header' '
	"$REPORT" -c r.yaml run tenant-statement --from "$DAY" --each tenant -f pdf,csv,xlsx,html -o each >paths &&
	for t in tenantA tenantB carrier; do
		grep -q "each/tenant-statement-$t-$DAY-$DAY.pdf" paths &&
		grep -q "each/tenant-statement-$t-$DAY-$DAY.html" paths &&
		grep -q "each/tenant-statement-$t-$DAY-$DAY-totals.csv" paths || { echo "no files of $t"; return 1; }
	done &&
	test "$(grep -c . paths)" = 24 &&
	pdftotext -layout "each/tenant-statement-tenantA-$DAY-$DAY.pdf" a.txt &&
	grep -q "Tenant: Acme Trading Ltd (tenantA)" a.txt && grep -q "Amounts in GBP" a.txt &&
	pdftotext -layout "each/tenant-statement-tenantB-$DAY-$DAY.pdf" b.txt &&
	grep -q "Tenant: Borealis Logistics GmbH (tenantB)" b.txt &&
	grep -q "Tenant: Acme Trading Ltd (tenantA)" "each/tenant-statement-tenantA-$DAY-$DAY.html"
'

test_expect_success 'a statement has its tenant figures only, and none of the operator costs' '
	for t in tenantA tenantB; do
		f=each/tenant-statement-$t-$DAY-$DAY &&
		test "$(sed -n 2p $f-totals.csv | tr -d "\r" | cut -d, -f1,3)" = "$(count_of $t),$(sell_of $t)" &&
		test "$(grep "Total before tax" $f-by-destination.csv | tr -d "\r" | cut -d, -f2,4)" = "$(count_of $t),$(sell_of $t)" &&
		test "$(grep "Total before tax" $f-by-source.csv | tr -d "\r" | cut -d, -f2,4)" = "$(count_of $t),$(sell_of $t)" &&
		pdftotext -layout $f.pdf $t.txt &&
		unzip -p $f.xlsx xl/sharedStrings.xml | sed "s/<[^>]*>/ /g" >$t.xlsx.txt &&
		sed -e "s/<style>.*<\/style>//" -e "s/<[^>]*>/ /g" $f.html >$t.html.txt &&
		cat $f-*.csv $t.html.txt $t.txt $t.xlsx.txt >$t.all &&
		! grep -qi -e "buy" -e "margin" -e "carrier" -e "loopcarrier" $t.all || { echo "$t: operator data"; return 1; }
	done &&
	! grep -q -e tenantB -e Borealis tenantA.all && ! grep -q -e tenantA -e Acme tenantB.all &&
	test "$(sell_of tenantA)" != "$(sell_of tenantB)"
'

test_expect_success 'as the tenant reader role (RLS): only its own statement, with the same figures' '
	q "select cdrflow_create_tenant_reader('"'"'tenantA'"'"', '"'"'reader_a'"'"')" >/dev/null &&
	"$REPORT" -c r.yaml --db "dbname=$PGDATABASE user=reader_a" run tenant-statement --from "$DAY" --each tenant \
		-f pdf,csv,html -o ra >ra.paths &&
	test "$(grep -c "\.pdf$" ra.paths)" = 1 &&
	grep -q "ra/tenant-statement-tenantA-$DAY-$DAY.pdf" ra.paths &&
	for s in totals by-destination by-day per-day; do
		test_cmp "each/tenant-statement-tenantA-$DAY-$DAY-$s.csv" "ra/tenant-statement-tenantA-$DAY-$DAY-$s.csv" || return 1
	done &&
	pdftotext -layout "ra/tenant-statement-tenantA-$DAY-$DAY.pdf" ra.txt &&
	grep -q "Tenant: Acme Trading Ltd (tenantA)" ra.txt && grep -q "Amounts in GBP" ra.txt &&
	"$REPORT" -c r.yaml --db "dbname=$PGDATABASE user=reader_a" run tenant-statement --from "$DAY" \
		--param tenant=tenantB -f csv -o rb >/dev/null &&
	test "$(sed -n 2p rb/tenant-statement-tenantB-$DAY-$DAY-totals.csv | tr -d "\r" | cut -d, -f1,3)" = "0,0.0000"
'

test_expect_success 'a statement needs its tenant; --each only for a template with that parameter' '
	test_exit_code 64 "$REPORT" -c r.yaml run tenant-statement --from "$DAY" -o x 2>need.err &&
	grep -q "needs --param tenant" need.err &&
	test_exit_code 64 "$REPORT" -c r.yaml run qos --from "$DAY" --each tenant -o x 2>qos.err &&
	grep -q "no parameter tenant" qos.err &&
	test_exit_code 64 "$REPORT" -c r.yaml run tenant-statement --each queue -o x 2>/dev/null &&
	test_exit_code 64 "$REPORT" -c r.yaml run tenant-statement --each tenant --param tenant=x -o x 2>/dev/null
'

test_expect_success 'operator-margin: buy, sell and margin per tenant, carrier and destination country, in GBP' '
	"$REPORT" -c r.yaml run operator-margin --from "$DAY" -f pdf,csv -o om >/dev/null &&
	f=om/operator-margin-$DAY-$DAY &&
	test "$(sed -n 2p $f-totals.csv | tr -d "\r" | cut -d, -f3-5)" = "$(q "select metric_money(sum(buy_cost)) || '"','"' || metric_money(sum(sell_cost)) || '"','"' || metric_money(coalesce(sum(sell_cost), 0) - coalesce(sum(buy_cost), 0)) from rollup_leg_v where calldate::date = '"'$DAY'"'")" &&
	grep -q "^\"loopcarrier\"," $f-by-carrier.csv &&
	grep -q "^\"International Networks\"," $f-by-destination.csv &&
	! grep -q "^\"882\"" $f-by-destination.csv &&
	pdftotext -layout $f.pdf om.txt && grep -q "Buy cost (GBP)" om.txt && grep -q "Margin % of sell" om.txt
'

test_expect_success 'money: the rates have four decimals, so every amount has four; a loss is never 0.00' '
	f=om/operator-margin-$DAY-$DAY &&
	tail -n +2 $f-by-tenant.csv | tr -d "\r" | cut -d, -f4-6 | tr , "\n" | grep -v "^$" >amounts &&
	test -s amounts && ! grep -vqE "^-?[0-9]+\.[0-9]{4}$" amounts &&
	test "$(q "select metric_money(-2500), metric_money(-40), metric_money(0), metric_money(2675000, 2)")" = "-0.0025|-0.000040|0.0000|2.68"
'

_srv=0
test_expect_success '--each tenant --deliver: each statement to its own tenant recipients, nothing of another tenant' '
	"$SMTP_PY" "$TEST_ROOT/tests/delivery/smtp_server.py" --port 0 --port-file smtp.port --maildir md --log smtp.log \
		--mode none >smtp.err 2>&1 &
	SMTP_PID=$! && register_pid $SMTP_PID &&
	wait_for "test -s smtp.port || ! kill -0 $SMTP_PID" 30 && test -s smtp.port &&
	cp r.yaml rd.yaml &&
	printf "%s\n" "  delivery:" "    spool: \"$TRASH/dspool\"" "    mail:" "      host: 127.0.0.1" \
		"      port: $(cat smtp.port)" "      tls: none" "      from: \"Reports <reports@example.com>\"" >>rd.yaml &&
	"$REPORT" -c rd.yaml run tenant-statement --from "$DAY" --each tenant --deliver -f pdf,html -o dl >dl.paths &&
	test "$(grep -c . smtp.log)" = 3 &&
	"$PYTHON" - smtp.log <<-\PY
	import email, email.policy, glob, json, sys
	want = {"tenantA": ["ap@acme.example"], "tenantB": ["billing@borealis.example", "fin@borealis.example"],
	        "carrier": ["noc@carrier.example"]}
	seen = set()
	for line in open(sys.argv[1]):
	    e = json.loads(line)
	    path = glob.glob("md/*/" + e["file"])[0]
	    m = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
	    att = [p.get_filename() for p in m.iter_attachments()]
	    html = m.get_body(preferencelist=("html",)).get_content()
	    t = [k for k in want if "tenant-statement-%s-" % k in " ".join(att)]
	    assert len(t) == 1, att
	    t = t[0]
	    assert sorted(e["rcpt_tos"]) == sorted(want[t]), (t, e["rcpt_tos"])
	    assert all("-%s-" % t in a for a in att), (t, att)
	    assert "Tenant: " in html and t in html and "<svg" in html, t  # the HTML statement is the body
	    for other in want:
	        assert other == t or ("(%s)" % other not in html and "Tenant: %s" % other not in html), (t, other)
	    seen.add(t)
	assert seen == set(want), seen
	print("ok", sorted(seen))
	PY
'

test_expect_success '--each tenant --deliver fails before building anything when a tenant has no recipients' '
	grep -v -e "tenant: carrier" -e "noc@carrier" rd.yaml >rd2.yaml &&
	test_exit_code 78 "$REPORT" -c rd2.yaml run tenant-statement --from "$DAY" --each tenant --deliver -o dl2 2>dl2.err &&
	grep -q "tenant carrier has no report.tenants" dl2.err &&
	test "$(grep -c . smtp.log)" = 3 && ! test -e dl2
'

test_done

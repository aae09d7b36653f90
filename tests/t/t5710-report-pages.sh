#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='every page of every shipped template, as a person sees it: PDF pages not blank and never a cell cut with an ellipsis, CJK and Arabic names, human headers, zero-filled hours, no empty legend entry; the HTML format in headless chromium shows the PDF figures; the fraud digest by call window and ETL progress'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
REPORT=$CDRFLOW_BUILD/cdrflow-report
for b in "$ETL" "$REPORT"; do [ -x "$b" ] || bail_out "no $b (run make)"; done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || bail_out "PostgreSQL server binaries are not installed (scripts/install-deps.sh)"
for c in pdftotext pdftoppm chromium; do
	command -v $c >/dev/null || bail_out "$c is not installed (scripts/install-deps.sh)"
done
fc-list | grep -q "Noto Sans CJK" || bail_out "fonts-noto-cjk is not installed (scripts/install-deps.sh)"
fc-list | grep -q "Noto Sans Arabic\|Noto Naskh Arabic" || bail_out "fonts-noto-core is not installed (scripts/install-deps.sh)"
capture_path s04_queue >/dev/null || bail_out "captures not found"
PAGES="$PYTHON $TEST_ROOT/tests/report/pages.py"

start_private_pg
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -X -Atc "$1"; }

cat >buy.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.5035,,60/60,,2020-01-01,
239,Sao Tome,0.3011,,30/6,3,2020-01-01,
447,UK mobile,0.0207,,60/1,,2020-01-01,
CSV
cat >sell.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.9055,,60/60,,2020-01-01,
239,Sao Tome,0.4525,,60/60,,2020-01-01,
44,UK,0.0315,,60/60,,2020-01-01,
CSV
sed "s|@DECKS@|$PWD|g" "$TEST_ROOT/tests/data/tenants-rating.yaml" >etl.yaml
printf '%s\n' "report:" "  templates_dir: $TEST_ROOT/templates" "  tz: UTC" >>etl.yaml
sed -i 's/^  currency: GBP$/  currency: EUR/' etl.yaml # this test's decks are in euros
SCENARIOS="s01_answered s02_unanswered s03_sip_rtp s03b_sip_rtp_impaired s04_queue s05_transfer s07_trunk_tenant"
CJK='山田太郎'
ARABIC='محمد عبد الله'
names() {
	q "update cdr set src = '$CJK', clid = '\"$CJK\" <1001>' where uniqueid = (select min(uniqueid) from cdr where carrier is not null)" &&
	q "update cdr set src = '$ARABIC', clid = '\"$ARABIC\" <1002>' where uniqueid = (select max(uniqueid) from cdr where carrier is not null)" &&
	q "update call set src = '$CJK' where call_id = (select min(call_id) from call where worst_mos is not null)" &&
	q "update call set src = '$ARABIC' where call_id = (select max(call_id) from call where worst_mos is not null)"
}
# two alerts of the fraud engine: calls of the day raised the day after
# (in the digest), and calls of the day before raised on the day (not)
alerts() {
	q "insert into alert (created_at, rule, kind, tenant, severity, subject, window_start, window_end)
	   values ('$1'::date + 1 + time '03:00', 'late-load', 'hotlist', 'tenantA', 'high', '+88239000001',
	           '$1'::date + time '10:00', '$1'::date + time '10:05'),
	          ('$1'::date + time '09:00', 'old-calls', 'hotlist', 'tenantA', 'high', '+88239000002',
	           '$1'::date - 1 + time '10:00', '$1'::date - 1 + time '10:05')"
}

test_expect_success 'load the captures; CJK and Arabic caller names; two alerts' '
	for s in $SCENARIOS; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >load.out &&
	DAY=$(q "select min(calldate)::date from cdr") && echo "$DAY" >day &&
	names && alerts "$DAY" &&
	test "$(q "select count(*) from cdr where src in ('"'$CJK'"', '"'$ARABIC'"')")" = 2
'
DAY=$(cat day 2>/dev/null)
TEMPLATES=$(cd "$TEST_ROOT/templates" && ls ./*.yaml | sed "s|^\./||; s|\.yaml$||")

test_expect_success 'every shipped template renders in all four formats' '
	for t in $TEMPLATES; do
		p= && if [ $t = tenant-statement ]; then p="--param tenant=tenantA"; fi &&
		"$REPORT" -c etl.yaml run $t --from "$DAY" -f pdf,csv,xlsx,html -o out $p >$t.paths 2>$t.err ||
			{ cat $t.err; return 1; }
		grep -q "\.pdf$" $t.paths && grep -q "\.html$" $t.paths || return 1
	done &&
	test "$(ls out/*.pdf | wc -l)" = "$(echo $TEMPLATES | wc -w)"
'

test_expect_success 'PDF: every page of every template has content; no cell cut with an ellipsis' '
	mkdir -p pg &&
	for f in out/*.pdf; do
		b=$(basename $f .pdf) &&
		pdftoppm -r 30 -gray $f pg/$b || return 1
		pdftotext -layout $f txt-$b.txt &&
		! grep -n "…" txt-$b.txt || { echo "$f has an ellipsis"; return 1; }
	done &&
	test "$(ls pg | wc -l)" -ge "$(echo $TEMPLATES | wc -w)" &&
	$PAGES ink pg/* >ink.out
'

test_expect_success 'CJK and Arabic caller names come through in the PDF and the HTML' '
	for t in cdr-export fraud-digest qos; do
		f=$(ls out/$t-*.pdf) && pdftotext -raw $f $t.raw || return 1
	done &&
	grep -q "$CJK" cdr-export.raw && grep -q "$CJK" fraud-digest.raw && grep -q "$CJK" qos.raw &&
	"$PYTHON" "$TEST_ROOT/tests/report/pages.py" has-text qos.raw "$ARABIC" &&
	"$PYTHON" "$TEST_ROOT/tests/report/pages.py" has-text cdr-export.raw "$ARABIC" &&
	grep -q "$CJK" out/cdr-export-*.html && grep -q "$ARABIC" out/cdr-export-*.html &&
	pdffonts $(ls out/cdr-export-*.pdf) >fonts.txt && grep -q "CJK" fonts.txt
'

test_expect_success 'no shipped template shows a raw column name as a header (HTML and XLSX)' '
	$PAGES headers out/*.html >headers.out &&
	for f in out/*.xlsx; do
		unzip -p $f xl/sharedStrings.xml | grep -o "<t[^>]*>[^<]*</t>" | sed "s/<[^>]*>//g" >>xstrings || return 1
	done &&
	! grep -xE "(buy_cost|sell_cost|rated_legs|billsec|dst_e164|ring_no_answer|rate_status|avg_mos|service_level)" xstrings
'

test_expect_success 'charts: the hours of the day zero-filled; a series without data has no legend entry' '
	test "$(grep -c . out/daily-traffic-$DAY-$DAY-per-hour.csv)" = 25 &&
	grep -q "^\"00:00\",0,0,0,0" out/daily-traffic-$DAY-$DAY-per-hour.csv &&
	head -1 out/daily-traffic-$DAY-$DAY-per-hour.csv | grep -q unknown &&
	! grep -q "Direction unknown" txt-daily-traffic-$DAY-$DAY.txt &&
	grep -q "Inbound" txt-daily-traffic-$DAY-$DAY.txt
'

test_expect_success 'units: percentages name their definition; the SL variant and threshold are printed' '
	grep -q "Service level (variant 4)" txt-queue-service-$DAY-$DAY.txt &&
	grep -q "T = 20 s" txt-queue-service-$DAY-$DAY.txt &&
	grep -q "Answer rate (answered calls / calls)" out/daily-traffic-$DAY-$DAY.html &&
	grep -q "Amounts in EUR" txt-daily-traffic-$DAY-$DAY.txt &&
	grep -q "Sell cost (EUR)" txt-daily-traffic-$DAY-$DAY.txt
'

test_expect_success 'HTML in headless chromium: not blank, and every figure of its tables and tiles is the PDF one' '
	mkdir -p shots &&
	for f in out/*.html; do
		b=$(basename $f .html) &&
		timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TRASH/chrome" \
			--window-size=1100,1400 --screenshot="$TRASH/shots/$b.png" "file://$TRASH/$f" >/dev/null 2>&1 &&
		timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TRASH/chrome" \
			--dump-dom "file://$TRASH/$f" >dom-$b.html 2>/dev/null &&
		test -s shots/$b.png && grep -q "</table>" dom-$b.html || { echo "chromium failed on $f"; return 1; }
		pdftotext -raw out/$b.pdf raw-$b.txt &&
		$PAGES dom-in-pdf dom-$b.html raw-$b.txt >>dom.out || return 1
	done &&
	$PAGES ink shots/*.png >shots.out &&
	grep -c "all in the PDF" dom.out
'

test_expect_success 'fraud digest: alerts by the call window they cover, not by when they were raised' '
	grep -q "+88239000001" out/fraud-digest-$DAY-$DAY-alerts.csv &&
	! grep -q "+88239000002" out/fraud-digest-$DAY-$DAY-alerts.csv &&
	grep -q "complete" out/fraud-digest-$DAY-$DAY-loaded.csv
'

test_expect_success 'fraud digest: a period the ETL has not loaded yet (today, until midnight) says so' '
	"$REPORT" -c etl.yaml run fraud-digest --from today -f pdf,csv -o later >later.paths &&
	grep -q "INCOMPLETE: calls loaded up to $(date -u +%Y-%m-%d)" later/fraud-digest-*-loaded.csv &&
	pdftotext -layout "$(grep "\.pdf$" later.paths)" later.txt && grep -q "INCOMPLETE" later.txt
'

test_done

#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='cdrflow-query (calls, stats, flow), the cdrflow dispatcher, cron/ and systemd units'
. "$(dirname "$0")/../lib/test-lib.sh"
require_collector
ETL=$CDRFLOW_BUILD/cdrflow-etl
Q=$CDRFLOW_BUILD/cdrflow-query
DISPATCH=$CDRFLOW_BUILD/cdrflow
for b in "$ETL" "$Q" "$DISPATCH"; do [ -x "$b" ] || bail_out "no $b (run make)"; done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || skip_all "PostgreSQL server binaries are not installed"
capture_path s01_answered >/dev/null || bail_out "captures not found"
CAPS=$(dirname "$(dirname "$(capture_path s01_answered)")")
[ -r "$CAPS/s05_transfer/cdr.csv" ] || bail_out "the captures' cdr.csv files are needed ($CAPS)"
CDRCSV=$TEST_ROOT/tests/query/cdrcsv.py
FLOWCHECK=$TEST_ROOT/tests/query/flow-check.py
SCEN="s01_answered s05_transfer s07_trunk_tenant"
ORACLES="$CAPS/s01_answered/cdr.csv $CAPS/s05_transfer/cdr.csv $CAPS/s07_trunk_tenant/cdr.csv"
[ -x /usr/bin/time ] && test_set_prereq GNU_TIME
command -v systemd-analyze >/dev/null 2>&1 && test_set_prereq SYSTEMD_ANALYZE
command -v groff >/dev/null 2>&1 && test_set_prereq GROFF
[ -x "$CDRFLOW_BUILD/cdrflow-report" ] && test_set_prereq REPORT
"$ETL" --help 2>/dev/null | grep -q "retention" && test_set_prereq ETL_RETENTION

PGDIR=$(mktemp -d /tmp/cdrflow-t5300.XXXXXX)
export CDRFLOW_PGPORT=$(free_port)
trap '"$TEST_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; test_cleanup' EXIT
eval "$("$TEST_ROOT/scripts/pg.sh" start "$PGDIR")" || bail_out "cannot start PostgreSQL"
"$ETL" migrate >/dev/null || bail_out "migrate failed"
q() { psql -Atc "$1"; }
DAY="--from 2026-11-21 --to 2026-11-22"

# the tenants/numbering/rating of t4200 (s07 is a trunk and tenant capture)
cat >sell-a.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.90,,60/60,,2020-01-01,
88239,Premium satellite,2.40,0.10,1/1,,2020-01-01,
239,Sao Tome,0.45,,60/60,,2020-01-01,
CSV
cat >buy.csv <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
882,International networks,0.50,,60/60,,2020-01-01,
239,Sao Tome,0.30,,30/6,3,2020-01-01,
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
      deck: $PWD/sell-a.csv
YAML
# a stand-in for migration 0009's rollup_hourly_v (same columns), filled
# from the legs with the definitions of docs/metrics.md
cat >rollup.sql <<'SQL'
CREATE TABLE t5300_rollup AS
SELECT date_trunc('hour', l.calldate, 'UTC') AS hour, coalesce(l.tenant, '') AS tenant,
       '' AS country, '' AS trunk,
       count(*) FILTER (WHERE l.dstchannel <> '' OR l.lastapp IN ('Dial', 'Queue')) AS calls,
       count(*) FILTER (WHERE (l.dstchannel <> '' OR l.lastapp IN ('Dial', 'Queue')) AND l.disposition = 'ANSWERED') AS answered,
       coalesce(sum(l.billsec) FILTER (WHERE (l.dstchannel <> '' OR l.lastapp IN ('Dial', 'Queue')) AND l.disposition = 'ANSWERED'), 0) AS billsec,
       coalesce(sum(l.sell_cost), 0) AS sell_cost
FROM cdr l JOIN call k ON k.call_id = l.call_id AND k.node = l.node
GROUP BY 1, 2;
CREATE VIEW rollup_hourly_v AS SELECT * FROM t5300_rollup;
SQL
# a row no real data has: UTF-8 wide characters, a comma, quotes, a newline
cat >odd.sql <<'SQL'
SELECT cdrflow_ensure_month('2026-01-15');
INSERT INTO call (call_id, node, start, direction, src, dst, tenant, legs, total_billsec, outcome, linkedids)
VALUES ('odd-1', 'odd', '2026-01-15 10:00:00+00', 'inbound', 'Zoë, "the" 東京', E'line1\nline2', 'テナント', 1, 7, 'answered', '{odd-1}'),
       ('odd-2', 'odd', '2026-01-15 11:00:00+00', 'inbound', 'plain', '123', 'x', 1, 3, 'busy', '{odd-2}');
SQL

test_expect_success 'load s01, s05 and s07 through the collector and cdrflow-etl' '
	for s in $SCEN; do
		"$TEST_ROOT/tests/truth/strip-cdr.py" "$(capture_path $s)" $s.raw &&
		cdrflow_collector --replay $s.raw --spool spool --node $s >/dev/null || return 1
	done &&
	"$ETL" --once -c etl.yaml --spool spool >out &&
	test "$(q "select count(*) from cdr")" = "$("$CDRCSV" rows $ORACLES)" &&
	psql -q -v ON_ERROR_STOP=1 -f odd.sql >/dev/null
'

# ---------------------------------------------------------------- calls

test_expect_success 'calls: one line per call of the period, as many as table call holds' '
	"$Q" calls $DAY -f csv --no-header >calls.csv &&
	test_line_count calls.csv = "$(q "select count(*) from call where start >= '"'"'2026-11-21'"'"' and start < '"'"'2026-11-22'"'"'")" &&
	"$Q" calls $DAY --tenant tenantA -f csv --no-header >a.csv &&
	test_line_count a.csv = "$(q "select count(*) from call where tenant = '"'"'tenantA'"'"' and start::date = '"'"'2026-11-21'"'"'")" &&
	"$Q" calls $DAY -f table >calls.table &&
	head -1 calls.table >h &&
	for c in call_id start src dst direction tenant legs billsec outcome worst_mos; do grep -qw $c h || return 1; done
'

test_expect_success 's01 has as many calls as its cdr.csv has linkedids; every one answered' '
	"$Q" calls $DAY --src "100*" --disposition answered -f json >s01.json &&
	want=$("$CDRCSV" linkedids "$CAPS/s01_answered/cdr.csv") &&
	test "$(grep -c "\"call_id\":\"lab-17952885[01]" s01.json)" = "$want" &&
	"$Q" calls $DAY --disposition "NO ANSWER" -f csv --no-header >na.csv &&
	test_line_count na.csv = "$(q "select count(*) from call where outcome = '"'"'no_answer'"'"'")"
'

test_expect_success '--dst: an E.164 prefix, with or without + and *, finds the calls of cdr.csv' '
	want=$("$CDRCSV" dst-linkedids 4420 "$CAPS/s07_trunk_tenant/cdr.csv") &&
	test "$want" -gt 0 &&
	for d in 4420 +4420 "+4420*"; do
		"$Q" calls $DAY --dst "$d" -f csv --no-header >dst.csv &&
		test_line_count dst.csv = "$want" || return 1
	done &&
	want=$("$CDRCSV" dst-linkedids 882 "$CAPS/s07_trunk_tenant/cdr.csv") &&
	"$Q" calls $DAY --dst 882 -f csv --no-header >dst.csv &&
	test_line_count dst.csv = "$want" &&
	"$Q" calls $DAY --dst 99999 -f csv --no-header >none.csv &&
	test_line_count none.csv = 0 &&
	test_exit_code 64 "$Q" calls $DAY --dst talk 2>err &&
	grep -q dst-raw err &&
	"$Q" calls $DAY --dst-raw hold -f csv --no-header >raw.csv &&
	test_line_count raw.csv = "$(q "select count(distinct call_id) from cdr where dst = '"'"'hold'"'"'")"
'

test_expect_success '--legs and --trunk: the legs of cdr.csv on trunk SIP/loop' '
	"$Q" calls $DAY --legs --trunk SIP/loop -n 0 -f csv --no-header >trunk.csv &&
	test_line_count trunk.csv = "$("$CDRCSV" trunk SIP/loop $ORACLES)" &&
	"$Q" calls $DAY --legs -n 0 -f csv --no-header >legs.csv &&
	test_line_count legs.csv = "$("$CDRCSV" rows $ORACLES)" &&
	"$Q" calls $DAY --legs --min-billsec 10 -n 0 -f json >b.json &&
	test "$(wc -l <b.json)" = "$(q "select count(*) from cdr where billsec >= 10")" &&
	! grep -q "\"billsec\":[0-9]," b.json
'

test_expect_success 'filters are bind parameters: quotes and SQL in values match nothing, break nothing' '
	"$Q" calls $DAY --tenant "x'"'"' OR '"'"'1'"'"'='"'"'1" -f csv --no-header >inj.csv &&
	test_line_count inj.csv = 0 &&
	"$Q" calls $DAY --src "1001'"'"'; DROP TABLE call; --" -f csv --no-header >inj.csv &&
	test_line_count inj.csv = 0 &&
	test "$(q "select to_regclass('"'"'call'"'"') is not null")" = t &&
	"$Q" calls $DAY --tenant tenantA -v -f csv >/dev/null 2>sql.log &&
	grep -q "sql: .*c.tenant = \\$" sql.log &&
	! grep "sql: " sql.log | grep -q tenantA
'

test_expect_success 'csv is RFC 4180 and json parses back to the same values (UTF-8, comma, quote, newline)' '
	"$Q" calls --from 2026-01-15 --to 2026-01-16 -f csv >odd.csv &&
	"$Q" calls --from 2026-01-15 --to 2026-01-16 -f json >odd.ndjson &&
	"$Q" calls --from 2026-01-15 --to 2026-01-16 -f json-array >odd.jsonarr &&
	"$PYTHON" -c "
import csv, json, sys
raw = open(\"odd.csv\", \"rb\").read()
assert raw.count(b\"\\r\\n\") == 3, raw          # header + 2 records, CRLF (the embedded newline is LF)
rows = list(csv.DictReader(open(\"odd.csv\", newline=\"\", encoding=\"utf-8\")))
nd = [json.loads(l) for l in open(\"odd.ndjson\", encoding=\"utf-8\")]
arr = json.load(open(\"odd.jsonarr\", encoding=\"utf-8\"))
assert len(rows) == len(nd) == len(arr) == 2
assert rows[0][\"src\"] == nd[0][\"src\"] == arr[0][\"src\"] == \"Zo\u00eb, \\\"the\\\" \u6771\u4eac\", rows[0]
assert rows[0][\"dst\"] == nd[0][\"dst\"] == \"line1\\nline2\"
assert nd[0][\"legs\"] == 1 and nd[0][\"billsec\"] == 7 and nd[1][\"outcome\"] == \"busy\"
assert nd[0][\"worst_mos\"] is None and rows[0][\"worst_mos\"] == \"\"
assert nd[0][\"start\"] == \"2026-01-15T10:00:00.000+00:00\", nd[0][\"start\"]
"
'

test_expect_success 'table: columns aligned in terminal cells (wide characters count 2)' '
	"$Q" calls --from 2026-01-15 --to 2026-01-16 >odd.table &&
	cat odd.table &&
	"$PYTHON" -c "
import unicodedata
def w(s):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in \"WF\" else 1 for c in s)
lines = open(\"odd.table\", encoding=\"utf-8\").read().splitlines()
assert len(lines) == 4, lines
# the start of each column (from the dashes line) is where each row has a
# cell boundary: the display width of the text before it is the same
dash = lines[1]
starts = [i for i, c in enumerate(dash) if c == \"-\" and (i == 0 or dash[i - 1] == \" \")]
for l in lines[2:]:
    # cut the row where its display width reaches each column start
    pos, acc, cuts = 0, 0, []
    for s in starts:
        while acc < s:
            acc += w(l[pos]); pos += 1
        assert acc == s, (l, s, acc)
        cuts.append(pos)
    assert l[cuts[1] - 2:cuts[1]] == \"  \", l
print(\"aligned\", starts)
"
'

test_expect_success '--limit: N rows and a note on stderr; 0 means all' '
	"$Q" calls $DAY -n 5 -f csv --no-header >l5.csv 2>l5.err &&
	test_line_count l5.csv = 5 &&
	grep -q "limit 5" l5.err &&
	"$Q" calls $DAY -n 0 -f csv --no-header >all.csv 2>all.err &&
	test_line_count all.csv = "$(q "select count(*) from call where start::date = '"'"'2026-11-21'"'"'")" &&
	test ! -s all.err
'

test_expect_success 'periods: --period and --tz resolve to the documented bounds' '
	today=$(date -u +%F) && tomorrow=$(date -u -d tomorrow +%F) &&
	"$Q" calls --period today -v -f csv >/dev/null 2>p.err &&
	grep -q "period \\[$today 00:00:00+00, $tomorrow 00:00:00+00) tz UTC" p.err &&
	"$Q" calls -v -f csv >/dev/null 2>p2.err &&
	grep -q "period \\[$today 00:00:00+00, $tomorrow 00:00:00+00)" p2.err &&
	"$Q" calls --period last-7-days -v -f csv >/dev/null 2>p3.err &&
	grep -q "period \\[$(date -u -d "7 days ago" +%F) 00:00:00+00, $today 00:00:00+00)" p3.err &&
	"$Q" calls --period last-month --tz Europe/Berlin -v -f csv >/dev/null 2>p4.err &&
	grep -q "period \\[$(date -d "$(date +%Y-%m-15) -1 month" +%Y-%m)-01 00:00:00+0[12], $(date +%Y-%m)-01 00:00:00+0[12]) tz Europe/Berlin" p4.err &&
	"$Q" calls --from "2026-11-22 04:17" --to 2026-11-23 --tz Asia/Tokyo -f json >tokyo.json &&
	n=$(q "select count(*) from call where start >= '"'"'2026-11-21 19:17+00'"'"' and start < '"'"'2026-11-22 15:00+00'"'"'") &&
	test "$n" -gt 0 && test "$n" -lt "$(q "select count(*) from call where start::date = '"'"'2026-11-21'"'"'")" &&
	test "$(wc -l <tokyo.json)" = "$n" &&
	"$Q" calls --from "2026-11-21 00:00+00" --to "2026-11-22 00:00+00" --tz Asia/Tokyo -f csv --no-header -n 1 >t1.csv &&
	first=$(q "select to_char(min(start) at time zone '"'"'Asia/Tokyo'"'"', '"'"'YYYY-MM-DD HH24:MI:SS'"'"') from call where start >= '"'"'2026-11-21'"'"' and start < '"'"'2026-11-22'"'"'") &&
	grep -q ",$first," t1.csv
'

test_expect_success 'bad input: exit 64 with a message (command, option, time, zone, period)' '
	test_exit_code 64 "$Q" 2>e1 && test -s e1 &&
	test_exit_code 64 "$Q" nosuch 2>e2 && grep -q "unknown command" e2 &&
	test_exit_code 64 "$Q" calls --no-such-option 2>e3 && test -s e3 &&
	test_exit_code 64 "$Q" calls --from yesterdayish 2>e4 && grep -q "period" e4 &&
	test_exit_code 64 "$Q" calls --period today --tz Mars/Olympus 2>e5 && grep -q "tz" e5 &&
	test_exit_code 64 "$Q" calls --period fortnight 2>e6 &&
	test_exit_code 64 "$Q" calls --from 2026-11-22 --to 2026-11-21 2>e7 && grep -q empty e7 &&
	test_exit_code 64 "$Q" calls --disposition maybe 2>e8 &&
	test_exit_code 64 "$Q" calls --min-billsec -3 2>e9 &&
	test_exit_code 64 "$Q" stats 2>e10 &&
	test_exit_code 64 "$Q" flow 2>e11 &&
	test_exit_code 69 "$Q" calls -d "host=/nonexistent port=1" 2>e12 &&
	test_exit_code 0 "$Q" --help >help.out 2>help.err && test ! -s help.err &&
	test "$("$Q" --version)" = "cdrflow-query $(cat "$TEST_ROOT/VERSION")"
'

# ---------------------------------------------------------------- stats

test_expect_success 'stats --by day from the legs: attempts and answered attempts are the dial legs of cdr.csv' '
	set -- $("$CDRCSV" dial $ORACLES) && calls=$1 answered=$2 &&
	"$Q" stats --by day $DAY --source base >day.table &&
	head -1 day.table | grep -q "^source: cdr+call" &&
	"$Q" stats --by day $DAY --source base -f csv >day.csv &&
	tr -d "\r" <day.csv >day.txt &&
	cat day.txt &&
	test "$(sed -n 2p day.txt | cut -d, -f2,3)" = "$calls,$answered" &&
	asr=$(awk -v a=$answered -v c=$calls "BEGIN { printf \"%.1f\", 100 * a / c }") &&
	test "$(sed -n 2p day.txt | cut -d, -f4)" = "$asr" &&
	test "$(sed -n 2p day.txt | cut -d, -f6)" = "$(q "select sum(billsec) from cdr where disposition = '"'"'ANSWERED'"'"' and (dstchannel <> '"'"''"'"' or lastapp in ('"'"'Dial'"'"', '"'"'Queue'"'"')) and calldate::date = '"'"'2026-11-21'"'"'")" &&
	test "$(sed -n 2p day.txt | cut -d, -f7)" = "$(q "select round(sum(sell_cost) / 1000000.0, 2) from cdr")"
'

test_expect_success 'stats --by hour/tenant/trunk/destination add up to the day' '
	day=$(sed -n 2p day.csv | cut -d, -f2,3,6) &&
	for by in hour tenant trunk destination; do
		"$Q" stats --by $by $DAY -f csv --no-header >by.csv &&
		sum=$(awk -F, "{ c += \$2; a += \$3; b += \$6 } END { print c \",\" a \",\" b }" by.csv) &&
		{ test "$sum" = "$day" || { echo "--by $by adds up to $sum, the day is $day:"; cat by.csv; false; }; } || return 1
	done &&
	"$Q" stats --by trunk $DAY -f csv --no-header >trunks.csv &&
	cut -d, -f1 trunks.csv | sort -u >t.got && printf "\nSIP/loop\n" >t.want && test_cmp t.want t.got &&
	"$Q" stats --by destination $DAY -f json >dest.json &&
	grep -q "\"destination\":\"GB\"" dest.json &&
	test "$(grep "\"GB\"" dest.json | sed "s/.*\"attempts\":\\([0-9]*\\).*/\\1/")" = \
	     "$(q "select count(*) from cdr where dst_country = '"'"'GB'"'"' and (dstchannel <> '"'"''"'"' or lastapp in ('"'"'Dial'"'"', '"'"'Queue'"'"'))")" &&
	"$Q" stats --by tenant $DAY --tenant tenantA -f csv --no-header >ta.csv &&
	test_line_count ta.csv = 1 && grep -q "^tenantA," ta.csv
'

test_expect_success 'stats reads rollup_hourly_v (migration 0009, and says so); it agrees with the legs' '
	"$Q" stats --by day $DAY >rday.table &&
	head -1 rday.table | grep -q "^source: rollup_hourly_v" &&
	"$Q" stats --by day $DAY -f csv >rday.csv &&
	test_cmp day.csv rday.csv &&
	"$Q" stats --by tenant $DAY -f csv >rt.csv &&
	"$Q" stats --by tenant $DAY -f csv --source base >bt.csv &&
	test_cmp bt.csv rt.csv &&
	psql -qc "update rollup_hourly set calls = calls + 1000" &&
	"$Q" stats --by day $DAY -f csv >rday2.csv &&
	psql -qc "update rollup_hourly set calls = calls - 1000" &&
	! test_cmp day.csv rday2.csv 2>/dev/null &&
	"$Q" stats --by day --from "2026-11-21 00:30" --to 2026-11-22 >half.table &&
	head -1 half.table | grep -q "^source: rollup_hourly_v, rollup_call_hourly + rollup_quarter_hour, rollup_call_quarter_hour (quarter hours)  " &&
	"$Q" stats --by day --from "2026-11-21 00:30" --to 2026-11-22 --source rollup -f csv >half.csv &&
	"$Q" stats --by day --from "2026-11-21 00:30" --to 2026-11-22 --source base -f csv >half-base.csv &&
	test_cmp half-base.csv half.csv &&
	# off the quarter-hour grid: those minutes from the legs (0074)
	"$Q" stats --by day --from "2026-11-21 00:20" --to 2026-11-22 >odd.table &&
	head -1 odd.table | grep -q "^source: rollup_hourly_v, rollup_call_hourly + rollup_quarter_hour, rollup_call_quarter_hour (quarter hours) + cdr+call" &&
	"$Q" stats --by day --from "2026-11-21 00:20" --to 2026-11-22 --source rollup -f csv >odd.csv &&
	"$Q" stats --by day --from "2026-11-21 00:20" --to 2026-11-22 --source base -f csv >odd-base.csv &&
	test_cmp odd-base.csv odd.csv &&
	psql -qc "alter view rollup_hourly_v rename to rollup_hourly_v_off" &&
	test_exit_code 78 "$Q" stats --by day $DAY --source rollup 2>nov.err &&
	psql -qc "alter view rollup_hourly_v_off rename to rollup_hourly_v" &&
	grep -q "rollup_hourly_v does not exist" nov.err
'

# ---------------------------------------------------------------- flow

test_expect_success 'flow of every s01 call: a column per channel, every CHAN_START and HANGUP (capture)' '
	n=0 &&
	for l in $("$CDRCSV" linkedid-list "$CAPS/s01_answered/cdr.csv"); do
		"$Q" flow $l >flow.$l &&
		"$FLOWCHECK" "$(capture_path s01_answered)" flow.$l || return 1
		n=$((n + 1))
	done &&
	test $n = "$("$CDRCSV" linkedids "$CAPS/s01_answered/cdr.csv")" &&
	cat flow.$l
'

test_expect_success 'flow of every s05 call: transfers marked, bridges drawn, merged linkedids followed' '
	tr=0 &&
	for l in $(q "select call_id from call where node = '"'"'s05_transfer'"'"' order by start"); do
		"$Q" flow $l >flow.$l &&
		"$FLOWCHECK" "$(capture_path s05_transfer)" flow.$l >fc.out || { cat fc.out; return 1; }
		cat fc.out
		tr=$((tr + $(sed "s/.*transfers=\\([0-9]*\\).*/\\1/" fc.out)))
	done &&
	test "$tr" = "$(q "select count(*) from cel where node = '"'"'s05_transfer'"'"' and eventtype in ('"'"'BLINDTRANSFER'"'"', '"'"'ATTENDEDTRANSFER'"'"')")" &&
	test "$tr" -ge 2 &&
	grep -l "BLINDTRANSFER" flow.* | head -1 >bt.name && grep -q "T" "$(cat bt.name)" &&
	merged=$(q "select linkedids[2] from call where cardinality(linkedids) > 1 and node = '"'"'s05_transfer'"'"' limit 1") &&
	test -n "$merged" &&
	"$Q" flow "$merged" >flow.merged &&
	head -1 flow.merged | grep -q "^call $(q "select call_id from call where '"'"'$merged'"'"' = any(linkedids)") " &&
	"$FLOWCHECK" "$(capture_path s05_transfer)" flow.merged
'

test_expect_success 'the flow checker itself fails on a damaged ladder' '
	f=$(grep -l "BLINDTRANSFER" flow.lab-* | head -1) &&
	sed "/ CHAN_START B /d" "$f" >damaged.1 &&
	! "$FLOWCHECK" "$(capture_path s05_transfer)" damaged.1 >/dev/null &&
	sed "/BLINDTRANSFER/s/T/ /" "$f" >damaged.2 &&
	! "$FLOWCHECK" "$(capture_path s05_transfer)" damaged.2 >/dev/null &&
	sed "/BRIDGE_ENTER [A-Z] <->/s/=/ /" "$f" >damaged.3 &&
	! "$FLOWCHECK" "$(capture_path s05_transfer)" damaged.3 >/dev/null &&
	test_exit_code 66 "$Q" flow no-such-linkedid 2>nf.err && grep -q "no CEL events" nf.err
'

# ---------------------------------------------------------------- speed (1 M legs)

plan_nodes() { # EXPLAIN JSON on stdin: "NodeType Relation Index" per node
	"$PYTHON" -c '
import json, sys
def walk(n):
    print(n["Node Type"].replace(" ", "_"), n.get("Relation Name", "-"), n.get("Index Name", "-"))
    for c in n.get("Plans", []):
        walk(c)
walk(json.load(sys.stdin)[0]["Plan"])'
}
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || return 1; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }

test_expect_success 'speed: 500 000 synthetic calls, 1 000 000 legs generated in SQL' '
	t0=$(date +%s) &&
	psql -q -v ON_ERROR_STOP=1 -v calls=500000 -f "$TEST_ROOT/tests/query/synth.sql" >/dev/null &&
	echo "generated 500 000 calls, 1 000 000 legs in $(($(date +%s) - t0)) s" >>"$TRASH/timings" &&
	test "$(q "select count(*) from cdr where node = '"'"'synth'"'"'")" = 1000000
'

test_expect_success 'speed: calls --dst PREFIX uses the (dst_e164, calldate) index, no Seq Scan' '
	"$Q" calls --dst 4420 --from 2026-10-01 --to 2026-10-08 --explain | plan_nodes >dst.plan &&
	cat dst.plan &&
	! grep -E "^Seq_Scan (cdr|call)_y" dst.plan &&
	grep -E "^(Bitmap_)?Index_(Only_)?Scan .* cdr_y2026m10_dst_e164" dst.plan &&
	! grep -q "y2026m09" dst.plan &&
	n=$("$Q" calls --dst 4420 --from 2026-10-01 --to 2026-10-08 -n 0 -f csv --no-header | wc -l) &&
	test "$n" = "$(q "select count(distinct call_id) from cdr where dst_e164 like '"'"'+4420%'"'"' and calldate >= '"'"'2026-10-01'"'"' and calldate < '"'"'2026-10-08'"'"'")" &&
	echo "calls --dst 4420, one week of 1 M legs: $n calls in $(ms "$Q" calls --dst 4420 --from 2026-10-01 --to 2026-10-08 -n 0 -f csv) ms" >>"$TRASH/timings"
'

test_expect_success 'speed: calls --tenant uses the (tenant, start) index, no Seq Scan' '
	"$Q" calls --tenant tenant7 --from 2026-10-01 --to 2026-10-08 --explain | plan_nodes >tenant.plan &&
	cat tenant.plan &&
	! grep -E "^Seq_Scan (cdr|call)_y" tenant.plan &&
	grep -E "^(Bitmap_)?Index_(Only_)?Scan .* call_y2026m10_tenant" tenant.plan &&
	"$Q" calls --legs --tenant tenant7 --dst 44 --from 2026-10-01 --to 2026-10-08 --explain | plan_nodes >legs.plan &&
	! grep -E "^Seq_Scan (cdr|call)_y" legs.plan &&
	{
		echo "calls --tenant tenant7, one week: $(ms "$Q" calls --tenant tenant7 --from 2026-10-01 --to 2026-10-08 -n 0 -f csv) ms"
		echo "first 1000 calls of two months: $(ms "$Q" calls --from 2026-09-01 --to 2026-11-01 -f csv) ms"
		echo "stats --by day from the legs, one day (16 400 legs): $(ms "$Q" stats --by day --from 2026-10-01 --to 2026-10-02) ms"
	} >>"$TRASH/timings"
'

test_expect_success GNU_TIME 'speed: --limit 0 streams 500 000 calls in bounded memory (csv and table)' '
	for f in csv table json; do
		/usr/bin/time -f "%M %e" -o rss.$f "$Q" calls --from 2026-09-01 --to 2026-11-01 -n 0 -f $f --no-header >big.$f &&
		read -r kb secs <rss.$f &&
		echo "--limit 0 -f $f: $(wc -l <big.$f) lines, max RSS $kb KiB, $secs s" >>"$TRASH/timings" &&
		test "$(wc -l <big.$f)" = 500000 &&
		rm -f big.$f &&
		{ ! test_have_prereq NOT_SANITIZED || test "$kb" -lt 30000; } || return 1
	done
'

[ -s "$TRASH/timings" ] && sed "s/^/# /" "$TRASH/timings"

# ---------------------------------------------------------------- the dispatcher

test_expect_success 'cdrflow --help lists the commands; --version; help CMD' '
	"$DISPATCH" --help >d.help 2>d.err && test ! -s d.err &&
	for c in collector etl report query; do grep -q "^  $c " d.help || return 1; done &&
	test "$("$DISPATCH" --version)" = "cdrflow $(cat "$TEST_ROOT/VERSION")" &&
	"$DISPATCH" help query >h1 && "$Q" --help >h2 && test_cmp h2 h1 &&
	"$DISPATCH" query --help >h3 && test_cmp h2 h3 &&
	test_exit_code 64 "$DISPATCH" 2>/dev/null &&
	test_exit_code 64 "$DISPATCH" --bogus 2>/dev/null
'

test_expect_success 'cdrflow CMD runs cdrflow-CMD next to it, else from PATH; exit status passed on; 127 unknown' '
	"$DISPATCH" query calls $DAY -f csv --no-header >via.csv && test_cmp all.csv via.csv &&
	mkdir -p alone pathdir &&
	cp "$DISPATCH" alone/cdrflow &&
	printf "#!/bin/sh\necho \"hello from PATH: \$0 \$*\"\nexit 3\n" >pathdir/cdrflow-hello &&
	chmod +x pathdir/cdrflow-hello &&
	test_exit_code 3 env PATH="$PWD/pathdir:$PATH" alone/cdrflow hello a "b c" >hello.out &&
	grep -q "hello from PATH: .*cdrflow-hello a b c" hello.out &&
	printf "#!/bin/sh\necho next-to-it\n" >alone/cdrflow-hello && chmod +x alone/cdrflow-hello &&
	env PATH="$PWD/pathdir:$PATH" alone/cdrflow hello >hello2.out && grep -q next-to-it hello2.out &&
	test_exit_code 127 alone/cdrflow nosuchcmd 2>u.err && grep -q "not a cdrflow command" u.err &&
	test_exit_code 127 alone/cdrflow ../../bin/sh 2>/dev/null &&
	printf "not executable\n" >alone/cdrflow-noexec &&
	test_exit_code 127 env PATH=/nonexistent alone/cdrflow noexec 2>/dev/null
'

# ---------------------------------------------------------------- cron and systemd

# every command line the crontab runs (after "flock ... LOCKFILE")
cron_commands() {
	grep -Ev "^[[:space:]]*(#|$|[A-Z_]+=)" "$TEST_ROOT/cron/cdrflow.crontab" |
		awk '{ $1 = $2 = $3 = $4 = $5 = ""; print }' | sed "s/^ *//"
}
# check_flags PROGRAM ARGS...: the program exists in the build and every
# word of ARGS that is an option or a subcommand appears in its --help
check_flags() {
	local prog=$1 help w
	shift
	help=$("$CDRFLOW_BUILD/$prog" --help) || { echo "$prog --help failed"; return 1; }
	for w in "$@"; do
		case $w in
		-c | -q | /*) ;; # -c FILE and -q: checked with the others below
		--*) printf "%s\n" "$help" | grep -q -- "$w\\b" || { echo "$prog: $w not in --help"; return 1; } ;;
		-?) printf "%s\n" "$help" | grep -q -- "$w," || { echo "$prog: $w not in --help"; return 1; } ;;
		esac
	done
	printf "%s\n" "$help" | grep -q -- "-c, --config" && printf "%s\n" "$help" | grep -q -- "-q, --quiet"
}

test_expect_success 'crontab: every job runs under flock -n/-w on its own lock file, five time fields' '
	cron_commands >cron.cmds &&
	cat cron.cmds &&
	test_line_count cron.cmds = 7 &&
	! grep -v "^flock -\\(n -E 0\\|w [0-9]*\\) /run/lock/cdrflow-[a-z-]*\\.lock cdrflow-[a-z]* " cron.cmds &&
	grep -Ev "^[[:space:]]*(#|$|[A-Z_]+=)" "$TEST_ROOT/cron/cdrflow.crontab" |
		awk "NF < 8 { exit 1 } { for (i = 1; i <= 5; i++) if (\$i !~ /^[0-9*,\\/-]+$/) exit 1 }" &&
	grep -q "cdrflow-etl --once" cron.cmds &&
	grep -q "cdrflow-etl retention --keep 13mo" cron.cmds &&
	grep -q "cdrflow-report run .* --out /var/lib/cdrflow/reports --deliver" cron.cmds &&
	grep -q "cdrflow-report retry " cron.cmds &&
	grep -q "cdrflow-report alerts " cron.cmds &&
	grep -q "cdrflow-collector -q -c" cron.cmds
'

test_expect_success 'crontab: the collector and ETL jobs use flags the programs have' '
	grep "cdrflow-collector" cron.cmds | sed "s/.*cdrflow-collector //" >c.args &&
	check_flags cdrflow-collector $(cat c.args) &&
	grep "cdrflow-etl --once" cron.cmds | sed "s/.*cdrflow-etl //" >e.args &&
	check_flags cdrflow-etl $(cat e.args) &&
	! check_flags cdrflow-etl --no-such-flag >/dev/null
'

test_expect_success ETL_RETENTION 'crontab: cdrflow-etl retention --keep exists' '
	"$ETL" --help | grep -q -- "--keep"
'

test_expect_success REPORT 'crontab: cdrflow-report run ... --deliver uses flags it has' '
	for a in $(grep "cdrflow-report" cron.cmds | sed "s/.*cdrflow-report \(run [a-z0-9-]*\|retry\|alerts\) //" | tr " " "\n" | grep "^-" | sort -u); do
		check_flags cdrflow-report $a || return 1
	done
'

test_expect_success 'crontab under a real flock: a second run while the first holds the lock exits 0 at once' '
	lock=$PWD/t.lock
	flock -n -E 0 "$lock" sleep 2 &
	pid=$!
	sleep 0.3 &&
	t0=$(date +%s%N) &&
	flock -n -E 0 "$lock" false &&
	test $((($(date +%s%N) - t0) / 1000000)) -lt 1000 &&
	wait $pid
'

test_expect_success SYSTEMD_ANALYZE 'systemd units: systemd-analyze verify is silent (ExecStart pointed at the build)' '
	mkdir -p units bin &&
	for p in collector etl report; do
		if [ -x "$CDRFLOW_BUILD/cdrflow-$p" ]; then ln -sf "$CDRFLOW_BUILD/cdrflow-$p" bin/; else
			printf "#!/bin/sh\n" >bin/cdrflow-$p && chmod +x bin/cdrflow-$p; fi
	done &&
	for f in "$TEST_ROOT"/cron/systemd/*; do sed "s#/usr/local/bin/#$PWD/bin/#g" "$f" >units/${f##*/} || return 1; done &&
	(cd units && systemd-analyze verify --man=no *.service *.timer) >verify.out 2>&1;
	cat verify.out && test ! -s verify.out &&
	sed "s/^Restart=always/Restart=sometimes/" units/cdrflow-collector.service >units/broken.service &&
	(cd units && systemd-analyze verify --man=no broken.service) >broken.out 2>&1;
	test -s broken.out
'

test_expect_success 'systemd units: every timer starts an existing service; services restart/hardening' '
	cd "$TEST_ROOT/cron/systemd" &&
	for t in *.timer; do
		s=$(sed -n "s/^Unit=//p" $t) &&
		test "$s" = "${t%.timer}.service" && test -f "$s" &&
		grep -q "^OnCalendar=" $t && grep -q "^Persistent=true" $t || return 1
	done &&
	test "$(ls *.timer | wc -l)" = 6 &&
	grep -q "^Restart=always" cdrflow-collector.service &&
	for s in *.service; do
		grep -q "^NoNewPrivileges=yes" $s && grep -q "^ProtectSystem=strict" $s && grep -q "^User=cdrflow" $s &&
		grep -q "^ExecStart=/usr/local/bin/cdrflow-[a-z]* " $s || { echo "$s"; return 1; }
	done &&
	grep -q "ExecStart=.*cdrflow-etl --once" cdrflow-etl.service &&
	grep -q "ExecStart=.*cdrflow-etl retention --keep 13mo" cdrflow-retention.service &&
	grep -q "ExecStart=.*cdrflow-report run .*--out /var/lib/cdrflow/reports --deliver" cdrflow-report-daily.service cdrflow-report-monthly.service &&
	grep -q "ExecStart=.*cdrflow-report retry " cdrflow-report-retry.service &&
	grep -q "ExecStart=.*cdrflow-report alerts " cdrflow-report-alerts.service
'

test_expect_success 'make install puts the templates where cdrflow-report looks by default' '
	make -C "$TEST_ROOT" -n install DESTDIR=/inst PREFIX=/usr/local >install.cmds 2>/dev/null &&
	grep -q "install -m 644 templates/\*.yaml /inst/usr/local/share/cdrflow/templates/" install.cmds &&
	strings "$CDRFLOW_BUILD/cdrflow-report" | grep -qx "/usr/local/share/cdrflow/templates"
'

test_expect_success 'interactive commands print "program: message", no daemon log prefix' '
	test_expect_code_any() { "$@"; test $? != 0; } &&
	test_expect_code_any "$Q" calls --db "host=/nonexistent-cdrflow" 2>q.err &&
	head -1 q.err | grep -q "^cdrflow-query: cannot connect" &&
	test_expect_code_any "$ETL" version --db "host=/nonexistent-cdrflow" 2>e.err &&
	head -1 e.err | grep -q "^cdrflow-etl: " &&
	! grep -q "\[[0-9]*\]: " q.err e.err
'

# ---------------------------------------------------------------- docs

test_expect_success 'docs: every option of cdrflow-query --help is in its man page and docs/query.md' '
	"$Q" --help | grep -o -- "--[a-z][a-z-]*" | sort -u >opts &&
	test "$(wc -l <opts)" -ge 20 &&
	sed -e "s/\\\\-/-/g" -e "s/\\\\f[BIRP]//g" "$TEST_ROOT/docs/man/cdrflow-query.1" >man.txt &&
	for o in $(cat opts); do
		grep -q -- "$o" man.txt || { echo "$o not in cdrflow-query.1"; return 1; }
		grep -q -- "$o" "$TEST_ROOT/docs/query.md" || { echo "$o not in docs/query.md"; return 1; }
	done &&
	grep -o -- "--[a-z][a-z-]*" man.txt | sort -u >man.opts &&
	comm -23 man.opts opts >extra && test ! -s extra &&
	sed -e "s/\\\\-/-/g" "$TEST_ROOT/docs/man/cdrflow.1" | grep -q "BR cdrflow-query (1)" &&
	for f in query.md cdrflow.md operations.md; do test -s "$TEST_ROOT/docs/$f" || return 1; done
'

test_expect_success GROFF 'docs: the man pages render without warnings' '
	for m in cdrflow-query cdrflow; do
		groff -man -Tascii -ww -z "$TEST_ROOT/docs/man/$m.1" 2>g.err && test ! -s g.err || { cat g.err; return 1; }
	done
'

test_done

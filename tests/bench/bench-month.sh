#!/usr/bin/env bash
# A month of legs (tests/query/synth.sql: calls of two legs over September
# and October 2026), the rollups rebuilt by the project's own mechanism
# (every rollup step of analytics_step over every call, as a load runs them), then the
# month's reports and queries, each timed once (the machine is shared:
# read the ratios to the goals, not the absolute numbers):
#   tenant-billing PDF+XLSX for October, daily-traffic for one day,
#   tenant-statement for one tenant's October (UTC and Asia/Kolkata),
#   fraud-digest for one day,
#   cdr-export CSV of October (rows/s, peak RSS; and its query alone through
#   psql's \copy, the floor), query calls --src over the month, query flow
#   LINKEDID.
#
#   BENCH_MONTH_LEGS  legs in October (default 400000; the issue's table: 10000000)
#   BENCH_MONTH_KEEP  a directory to keep the cluster in (opt-in, for
#                     iterating): a database generated there before is
#                     reused, and the directory is kept at exit (the server
#                     is stopped).  Default: a fresh mktemp directory,
#                     deleted at exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
legs=${BENCH_MONTH_LEGS:-400000}
calls=$((legs * 61 / 62)) # two legs a call over 61 days: October holds $legs legs
keep=${BENCH_MONTH_KEEP:-}
if [ -n "$keep" ]; then
	mkdir -p "$keep"
	work=$(cd "$keep" && pwd)
else
	work=$(mktemp -d /tmp/cdrflow-bench-month.XXXXXX)
fi
chmod 755 "$work"
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54343}
cleanup() {
	"$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
	if [ -n "$keep" ]; then rm -rf "$work/out"; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
reuse=0
if [ -n "$keep" ] && [ "$(cat "$work/generated" 2>/dev/null)" = "$calls" ]; then
	reuse=1
elif [ -n "$keep" ]; then # none, or another size, or half-made: start over
	"$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work/pg" "$work/generated" "$work/in-order"
fi
eval "$("$here/scripts/pg.sh" start "$work/pg")" || { echo "bench-month: cannot start PostgreSQL" >&2; exit 69; }
t0=$(now)
# a reused month is migrated too: a new migration rebuilds its rollups
"$BUILD/cdrflow-etl" migrate -q >/dev/null
if [ $reuse = 1 ]; then
	echo "bench-month: reusing the database in $work (10 M legs take about half an hour to generate)"
	if [ ! -e "$work/in-order" ]; then # kept before the month was put in calldate order
		psql -q -v ON_ERROR_STOP=1 -c "CLUSTER cdr_y2026m10 USING cdr_y2026m10_calldate_uniqueid_idx" \
			-c "ANALYZE cdr_y2026m10" && touch "$work/in-order"
	fi
else
psql -q -v ON_ERROR_STOP=1 -v calls="$calls" -f "$here/tests/query/synth.sql" >/dev/null
# October's outbound legs go through a carrier and are rated (one in ten
# without a sell rate), so that the month statement has carrier legs
psql -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
UPDATE cdr SET carrier = 'loop', rate_status = CASE WHEN uniqueid LIKE '%7.1' THEN 'no_sell_rate' ELSE 'rated' END,
       buy_cost = 1000 + (billsec * 7) % 500,
       sell_cost = CASE WHEN uniqueid LIKE '%7.1' THEN NULL ELSE 2000 + (billsec * 11) % 700 END,
       buy_prefix = substr(dst_e164, 2, 3),
       sell_prefix = CASE WHEN uniqueid LIKE '%7.1' THEN NULL ELSE substr(dst_e164, 2, 2) END
WHERE calldate >= '2026-10-01' AND calldate < '2026-11-01' AND uniqueid LIKE '%.1';
-- the UPDATE wrote those legs again at the end of the partition: put the
-- month back in calldate order, the order a load leaves it in
CLUSTER cdr_y2026m10 USING cdr_y2026m10_calldate_uniqueid_idx;
CREATE TEMP TABLE call_batch (LIKE call INCLUDING DEFAULTS);
INSERT INTO call_batch SELECT * FROM call;
-- every analytics step that keeps a rollup, as a load runs them, once over
-- every call (the migrations built the rollups over an empty warehouse)
DO $$
DECLARE s record;
BEGIN
	FOR s IN SELECT fn FROM analytics_step WHERE fn LIKE 'rollup%' ORDER BY ord LOOP
		EXECUTE format('SELECT %I($1, 0, 0)', s.fn) USING 'bench-month';
	END LOOP;
END $$;
VACUUM ANALYZE;
SQL
[ -z "$keep" ] || { echo "$calls" >"$work/generated" && touch "$work/in-order"; }
fi
n=$(psql -Atc "select count(*) from cdr where calldate >= '2026-10-01' and calldate < '2026-11-01'")
[ $reuse = 1 ] || printf 'bench-month: %d legs in October 2026 (%d calls over two months) generated, rollups rebuilt, in %.0f s\n' \
	"$n" "$calls" "$(secs "$t0" "$(now)")"

R=$BUILD/cdrflow-report
Q=$BUILD/cdrflow-query
t0=$(now)
"$R" -q --templates "$here/templates" run tenant-billing --from 2026-10 -f pdf,xlsx -o "$work/out" >/dev/null 2>&1
billing_s=$(secs "$t0" "$(now)")
t0=$(now)
"$R" -q --templates "$here/templates" run daily-traffic --from 2026-10-15 -f pdf,xlsx,csv \
	-o "$work/out" >/dev/null 2>&1
day_s=$(secs "$t0" "$(now)")
# the same day in Asia/Kolkata (+05:30): whole quarter hours, not whole
# hours (0074: the quarter-hour rollups)
t0=$(now)
"$R" -q --templates "$here/templates" run daily-traffic --from 2026-10-15 --tz Asia/Kolkata -f pdf,xlsx,csv \
	-o "$work/out" >/dev/null 2>&1
dayk_s=$(secs "$t0" "$(now)")
# one tenant's statement (0055: rollup_statement_hourly), in UTC and in a
# zone whose midnights cut an hour (Asia/Kolkata, +05:30: those hours from the legs)
t0=$(now)
"$R" -q --templates "$here/templates" run tenant-statement --from 2026-10 -p tenant=tenant0 -f pdf,xlsx \
	-o "$work/out" >/dev/null 2>&1
stmt_s=$(secs "$t0" "$(now)")
t0=$(now)
"$R" -q --templates "$here/templates" run tenant-statement --from 2026-10 -p tenant=tenant0 --tz Asia/Kolkata \
	-f pdf,xlsx -o "$work/out" >/dev/null 2>&1
stmtk_s=$(secs "$t0" "$(now)")
# fraud-digest reads the legs (cdr); its out-of-hours section lists them
t0=$(now)
"$R" -q --templates "$here/templates" run fraud-digest --from 2026-10-15 -f pdf,csv -o "$work/out" >/dev/null 2>&1
fraud_s=$(secs "$t0" "$(now)")
ooh=$(($( (wc -l <"$work/out/fraud-digest-2026-10-15-2026-10-15-out-of-hours.csv") 2>/dev/null || echo 1) - 1))
# the server alone: the export's query (templates/cdr-export.yaml, UTC) read
# by psql's \copy into /dev/null, the floor for cdr-export; run before and
# after the export (the first run warms the cache), the faster one counts
q="SELECT l.calldate, l.answer, l.\"end\", l.node, l.uniqueid, l.linkedid, l.call_id, l.clid, l.src, l.dst,
	l.dcontext, l.channel, l.dstchannel, l.lastapp, l.lastdata, l.duration, l.billsec, l.disposition, l.accountcode,
	l.userfield, l.tenant, l.direction, l.src_e164, l.dst_e164, l.carrier, l.rate_status, l.buy_cost, l.sell_cost,
	l.margin FROM cdr l WHERE l.calldate >= '2026-10-01 00:00+00' AND l.calldate < '2026-11-01 00:00+00'
	ORDER BY l.calldate, l.uniqueid"
raw_copy() {
	local t0
	t0=$(now)
	psql -Xq -c "\\copy ($(printf '%s' "$q" | tr '\n\t' '  ')) to /dev/null" # \copy takes one line
	secs "$t0" "$(now)"
}
raw1_s=$(raw_copy)
t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$R" -q --templates "$here/templates" run cdr-export --from 2026-10 -f csv \
	-o "$work/out" >/dev/null
export_s=$(secs "$t0" "$(now)")
rows=$(($(wc -l <"$work/out"/cdr-export-2026-10-01-2026-10-31.csv) - 1))
rm -f "$work/out"/cdr-export-*.csv
raw_s=$(raw_copy)
raw_s=$(echo "if ($raw1_s < $raw_s) $raw1_s else $raw_s" | bc -l)
t0=$(now)
"$Q" calls --src 1007 --from 2026-10-01 --to 2026-11-01 -n 0 -f csv >/dev/null
src_s=$(secs "$t0" "$(now)")
t0=$(now)
"$Q" flow "syn-$((calls * 9 / 10))" >/dev/null 2>&1 || true # synth has no CEL: the call lookup is what is timed
flow_s=$(secs "$t0" "$(now)")
# a page of calls with a leg filter (the calls walked in order) and the
# month's stats in a half-hour zone (the rollups and the cut hours' legs)
t0=$(now)
"$Q" calls --dst +44 --from 2026-10 -f csv >/dev/null 2>&1
dst_s=$(secs "$t0" "$(now)")
t0=$(now)
"$Q" calls --trunk SIP/trunk3 --from 2026-10 -f csv >/dev/null 2>&1
trunk_s=$(secs "$t0" "$(now)")
t0=$(now)
"$Q" stats --by day --from 2026-10 --tz Asia/Kolkata -f csv >/dev/null
statk_s=$(secs "$t0" "$(now)")
t0=$(now)
"$Q" stats --by hour --from 2026-10-15 --to 2026-10-16 --tz Asia/Kolkata -f csv >/dev/null
statkh_s=$(secs "$t0" "$(now)")
awk -v b="$billing_s" -v d="$day_s" -v st="$stmt_s" -v stk="$stmtk_s" -v fd="$fraud_s" -v ooh="$ooh" -v e="$export_s" -v raw="$raw_s" -v r="$rows" -v rss="$(tail -n 1 "$work/rss")" -v s="$src_s" \
    -v f="$flow_s" -v n="$n" -v qd="$dst_s" -v qt="$trunk_s" -v qk="$statk_s" -v qkh="$statkh_s" -v dk="$dayk_s" 'BEGIN {
	printf "%-52s %10s %s\n", "(" n " legs in the month)", "seconds", "goal"
	printf "%-52s %10.2f %s\n", "tenant-billing PDF+XLSX, the month", b, "< 1 s at 10 M legs"
	printf "%-52s %10.2f %s\n", "daily-traffic, one day", d, "< 0.3 s"
	printf "%-52s %10.2f %s\n", "daily-traffic, one day, Asia/Kolkata", dk, "< 0.3 s"
	printf "%-52s %10.2f %s\n", "tenant-statement month: PDF+XLSX, one tenant", st, "< 1 s"
	printf "%-52s %10.2f %s\n", "tenant-statement month: the same, Asia/Kolkata", stk, "< 1 s"
	printf "%-52s %10.2f %s (out-of-hours lists %d legs)\n", "fraud-digest day: PDF+CSV", fd, "< 0.3 s", ooh
	printf "%-52s %10.2f %s\n", "cdr-export CSV, the month", e, ""
	printf "  cdr-export: %d rows, %.0f rows/s, peak RSS %.1f MB (goal >= 500 k rows/s, < 32 MB)\n", r, r / e, rss / 1024
	printf "  its query alone (psql \\copy to /dev/null): %.2f s, %.0f rows/s; cdr-export takes %.2f times as long\n", raw, r / raw, e / raw
	printf "%-52s %10.3f %s\n", "query calls --src 1007, the month", s, "< 0.1 s"
	printf "%-52s %10.3f %s\n", "query flow LINKEDID (call lookup)", f, "< 0.05 s"
	printf "%-52s %10.3f %s\n", "query calls --dst +44, the month (a page)", qd, ""
	printf "%-52s %10.3f %s\n", "query calls --trunk SIP/trunk3, the month (a page)", qt, ""
	printf "%-52s %10.3f %s\n", "query stats --by day, the month, Asia/Kolkata", qk, ""
	printf "%-52s %10.3f %s\n", "query stats --by hour, one day, Asia/Kolkata", qkh, ""
}'

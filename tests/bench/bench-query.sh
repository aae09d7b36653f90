#!/usr/bin/env bash
# cdrflow-query benchmark: a synthetic warehouse (tests/query/synth.sql:
# BENCH_QUERY_CALLS calls of two legs over two months, default 500000),
# then each query's plan (the scan nodes of EXPLAIN) and its wall time
# (best of 3, output to /dev/null), and the peak RSS of --limit 0.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
Q=$BUILD/cdrflow-query
calls=${BENCH_QUERY_CALLS:-500000}
work=$(mktemp -d /tmp/cdrflow-bench-query.XXXXXX)
chmod 755 "$work"
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54341}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$("$here/scripts/pg.sh" start "$work/pg")" || { echo "bench-query: cannot start PostgreSQL" >&2; exit 69; }
"$BUILD/cdrflow-etl" migrate -q >/dev/null
t0=$(date +%s)
psql -q -v ON_ERROR_STOP=1 -v calls="$calls" -f "$here/tests/query/synth.sql" >/dev/null
echo "bench-query: $calls calls, $((calls * 2)) legs generated in $(($(date +%s) - t0)) s"

scans() { # the scan nodes of the plan, one line
	"$Q" "$@" --explain | python3 -c '
import json, sys
out = []
def walk(n):
    if "Scan" in n["Node Type"]:
        out.append(n["Node Type"] + " " + n.get("Index Name", n.get("Relation Name", "")))
    for c in n.get("Plans", []):
        walk(c)
walk(json.load(sys.stdin)[0]["Plan"])
print("; ".join(out))'
}
best_ms() {
	local best=999999999 i t0 t1
	for i in 1 2 3; do
		t0=$(date +%s%N)
		"$Q" "$@" >/dev/null
		t1=$(date +%s%N)
		[ $(((t1 - t0) / 1000000)) -lt $best ] && best=$(((t1 - t0) / 1000000))
	done
	echo $best
}
run() { # label, args...
	local label=$1
	shift
	printf '%-44s %6s ms  %s\n' "$label" "$(best_ms "$@")" "$(scans "$@")"
}
W="--from 2026-10-01 --to 2026-10-08"
M="--from 2026-09-01 --to 2026-11-01"
run "calls, one week, first 1000" calls $W -f csv -q
run "calls --dst 4420, one week, all" calls --dst 4420 $W -n 0 -f csv
run "calls --dst 4420, two months, all" calls --dst 4420 $M -n 0 -f csv
run "calls --tenant tenant7, one week, all" calls --tenant tenant7 $W -n 0 -f csv
run "calls --legs --src 1007, one week, all" calls --legs --src 1007 $W -n 0 -f csv
run "calls --legs --tenant tenant7 --dst 44, week" calls --legs --tenant tenant7 --dst 44 $W -n 0 -f csv
run "stats --by day, one week (legs)" stats --by day $W --source base
run "stats --by trunk, one week (legs)" stats --by trunk $W --source base
for f in csv json table; do
	/usr/bin/time -f "%M %e" -o "$work/rss" "$Q" calls $M -n 0 -f $f >/dev/null
	read -r kb s <"$work/rss"
	echo "calls, two months, --limit 0 -f $f: $calls rows in $s s, peak RSS $kb KiB"
done

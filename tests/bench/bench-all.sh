#!/usr/bin/env bash
# make bench: every benchmark in one run, then the issue 15 table (the
# lines each benchmark prints for it) side by side at the end.
#   short by default; scale up with BENCH_EVENTS (collector),
#   BENCH_ETL_EVENTS="1000000 2000000 5000000 10000000" (ETL sizes),
#   BENCH_ETL_REPEAT=N (ETL rounds per size, medians; default 3),
#   BENCH_MONTH_LEGS=10000000 (the month's reports and queries),
#   BENCH_MONTH_KEEP=DIR (generate the month once and keep it there),
#   BENCH_QUERY_CALLS (query plans).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
export BUILD
logs=$(mktemp -d /tmp/cdrflow-bench-all.XXXXXX)
trap 'rm -rf "$logs"' EXIT
rc=0
run() { # name, command...
	local name=$1
	shift
	echo "== $name"
	"$@" 2>&1 | tee "$logs/$name.log"
	[ "${PIPESTATUS[0]}" = 0 ] || { echo "bench: $name failed" >&2; rc=1; }
}
run collector "$here/tests/bench/bench-collector.sh"
run etl "$here/tests/bench/bench-etl.sh"
run rating "$BUILD/tests/bench-rating"
run report "$here/tests/bench/bench-report.sh"
run query "$here/tests/bench/bench-query.sh"
run month "$here/tests/bench/bench-month.sh"
run kamailio "$here/tests/bench/bench-kamailio.sh"
run citus "$here/tests/bench/bench-citus.sh"

echo
echo "== issue 15: the table, from this run"
grep -hE "^(collector / raw copy|collector peak RSS|collector CPU|npm asterisk-manager)" "$logs/collector.log"
grep -hE "^[0-9]+ events: |^etl peak RSS" "$logs/etl.log"
grep -hE "^\(|^tenant-billing|^daily-traffic|^tenant-statement|^fraud-digest|^  cdr-export|^query " "$logs/month.log"
exit $rc

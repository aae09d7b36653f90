#!/usr/bin/env bash
# The ETL on a 3-node local Citus cluster (coordinator + 2 workers on this
# machine, migrate --distribute) against the same spool on one PostgreSQL,
# side by side in one run: events/s of each and the ratio, so the overhead
# of distribution is known.  Function, not speed: three servers on the same
# cores compete for them (docs/scale-out.md).
#
#   BENCH_CITUS_EVENTS  events per node (default 50000), BENCH_CITUS_NODES
#   nodes (default 4): one generated stream of the real captures per node
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
shared=${CDRFLOW_SHARED:-$here/../shared}
events=${BENCH_CITUS_EVENTS:-50000}
nodes=${BENCH_CITUS_NODES:-4}
work=$(mktemp -d /tmp/cdrflow-bench-citus.XXXXXX)
chmod 755 "$work"
export CDRFLOW_CITUS_TARBALL=${CDRFLOW_CITUS_TARBALL:-$shared/vendor/citus-13.2.2.tar.gz}
cport=${CDRFLOW_PGPORT:-54341}
pport=$((cport + 3))
cleanup() {
	"$here/scripts/citus.sh" stop "$work/citus" >/dev/null 2>&1 || true
	"$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }

echo "bench-citus: $nodes nodes x $events events generated from the real captures"
for i in $(seq 1 "$nodes"); do
	python3 "$here/tests/bench/gen-stream.py" --events "$events" "$shared"/captures/s0[1245]*/ami.raw* 2>/dev/null |
		"$BUILD/cdrflow-collector" --replay - --spool "$work/spool" --node "pbx$i" --fsync off -q >/dev/null
done
cenv=$(CDRFLOW_PGPORT=$cport "$here/scripts/citus.sh" start "$work/citus") || { echo "bench-citus: cannot start Citus" >&2; exit 69; }
penv=$(CDRFLOW_PGPORT=$pport "$here/scripts/pg.sh" start "$work/pg") || { echo "bench-citus: cannot start PostgreSQL" >&2; exit 69; }
(eval "$cenv" && "$BUILD/cdrflow-etl" migrate --distribute -q >/dev/null)
(eval "$penv" && "$BUILD/cdrflow-etl" migrate -q >/dev/null)

load() { # ENV -> "events seconds"
	local t0 t1 out
	t0=$(now)
	out=$(eval "$1" && cd "$here" && "$BUILD/cdrflow-etl" --once -c tests/data/demo/cdrflow.yaml --spool "$work/spool" 2>/dev/null)
	t1=$(now)
	echo "$(echo "$out" | sed -n 's/.*events=\([0-9]*\).*/\1/p') $(echo "$t1 - $t0" | bc -l)"
}
read -r pe ps < <(load "$penv")
read -r ce cs < <(load "$cenv")
[ "$pe" = "$ce" ] || { echo "bench-citus: the two loads differ ($pe vs $ce events)" >&2; exit 70; }
printf 'bench-citus: one server      %9d events %8.1f s %9.0f events/s\n' "$pe" "$ps" "$(echo "$pe / $ps" | bc -l)"
printf 'bench-citus: citus 1+2 nodes %9d events %8.1f s %9.0f events/s\n' "$ce" "$cs" "$(echo "$ce / $cs" | bc -l)"
printf 'bench-citus: ratio citus/one server = %.2f (events/s)\n' "$(echo "$ps / $cs" | bc -l)"

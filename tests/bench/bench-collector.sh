#!/usr/bin/env bash
# Collector throughput vs. a plain TCP-to-file copy of the same bytes, side by
# side in one run (the machine is shared and noisy: compare ratios).
#
#   BENCH_EVENTS   minimum events to stream (default 1000000)
#   BENCH_CAPTURE  capture to repeat (default ../shared/captures/s08_burst/ami.raw.xz)
#   BENCH_AUTH     the collector's login: md5 (the default auth, default) or plain
#   BENCH_NPM      1 (default when node and npm are there): also the npm
#                  asterisk-manager client on the same stream, as a peer
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
shared=${CDRFLOW_SHARED:-$here/../shared}
capture=${BENCH_CAPTURE:-$shared/captures/s08_burst/ami.raw.xz}
want_events=${BENCH_EVENTS:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/cdrflow-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export CDRFLOW_AMI_SECRET=bench-secret

# how many events/bytes one pass of the capture holds
python3 "$here/tests/fake_ami.py" --capture "$capture" --list-events > "$work/events"
per_pass=$(wc -l < "$work/events")
pass_bytes=$(awk '{s += $2} END {print s}' "$work/events")
repeat=$(( (want_events + per_pass - 1) / per_pass ))
events=$(( per_pass * repeat ))
bytes=$(( pass_bytes * repeat ))
echo "bench: $events events, $((bytes / 1000000)) MB ($repeat x $(basename "$(dirname "$capture")"))"

start_server() { # $1 = port file
	python3 "$here/tests/fake_ami.py" --capture "$capture" --repeat "$repeat" --secret bench-secret \
		--username bench --port-file "$1" > "$work/server.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 400); do [ -s "$1" ] && break; sleep 0.05; done
	port=$(cat "$1")
}
now() { date +%s.%N; }

# 1. raw copy: the ceiling
start_server "$work/port1"
t0=$(now)
"$BUILD/tests/tcpcopy" 127.0.0.1 "$port" bench "$work/raw.out" "$bytes" > /dev/null
t1=$(now)
raw_s=$(echo "$t1 - $t0" | bc -l)
kill -9 "${pids[-1]}" 2>/dev/null || true

# 2. the collector, default settings (fsync: always)
start_server "$work/port2"
cat > "$work/collector.yaml" <<YAML
spool: $work/spool
collector:
  status_interval: 0
  nodes:
    - name: bench
      host: 127.0.0.1
      port: $port
      username: bench
      auth: ${BENCH_AUTH:-md5}
YAML
record_bytes=$(( bytes + events * (32 + 5) ))
t0=$(now)
"$BUILD/cdrflow-collector" -c "$work/collector.yaml" -q &
cpid=$!
pids+=($cpid)
# one stat(1) per poll: the poller must not steal the collector's CPU
while :; do
	sizes=$(stat -c %s "$work"/spool/bench/*.seg 2>/dev/null) || sizes=
	total=0 nseg=0
	for s in $sizes; do total=$((total + s)); nseg=$((nseg + 1)); done
	[ $(( total - nseg * 128 )) -ge "$record_bytes" ] && break
	sleep 0.05
done
t1=$(now)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$cpid/status")
# CPU seconds (user + system) of the collector: fields 14 and 15 of stat, in ticks
cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$cpid/stat")
kill -TERM "$cpid"; wait "$cpid"
col_s=$(echo "$t1 - $t0" | bc -l)
verify=$("$BUILD/cdrflow-collector" --verify --spool "$work/spool")

# the npm asterisk-manager client on the same stream (a peer, when node is there)
npm_line="npm asterisk-manager: not run (no node/npm)"
if [ "${BENCH_NPM:-1}" = 1 ] && command -v node >/dev/null && command -v npm >/dev/null; then
	mkdir -p "$work/npm"
	if (cd "$work/npm" && npm install --silent --no-audit --no-fund asterisk-manager >/dev/null 2>&1); then
		cat >"$work/npm/peer.js" <<'JS'
// every event to a file, one JSON line each, until the expected count
const fs = require('fs');
const [port, want, out] = process.argv.slice(2);
const ami = new (require('asterisk-manager'))(port, '127.0.0.1', 'bench', 'bench-secret', true);
const f = fs.createWriteStream(out);
let n = 0;
ami.on('managerevent', (e) => {
  f.write(JSON.stringify(e) + '\n');
  if (++n >= +want) { f.end(() => process.exit(0)); }
});
ami.on('error', (e) => { console.error(e); process.exit(1); });
JS
		start_server "$work/port3"
		t0=$(now)
		/usr/bin/time -f "%M %U %S" -o "$work/npm.time" node "$work/npm/peer.js" "$port" "$events" "$work/npm.out" ||
			echo "bench-collector: the npm peer failed" >&2
		t1=$(now)
		read -r npm_kb npm_u npm_s <"$work/npm.time"
		npm_line=$(awk -v e="$events" -v t="$(echo "$t1 - $t0" | bc -l)" -v kb="$npm_kb" -v u="$npm_u" -v s="$npm_s" \
			'BEGIN { printf "npm asterisk-manager peer: %.0f events/s, peak RSS %.1f MB, %.2f CPU-s per M events", e / t, kb / 1024, (u + s) / e * 1e6 }')
	else
		npm_line="npm asterisk-manager: npm install failed (offline?)"
	fi
fi

awk -v e="$events" -v b="$bytes" -v r="$raw_s" -v c="$col_s" -v rss="$rss_kb" -v v="$verify" -v cpu="$cpu_s" \
    -v auth="${BENCH_AUTH:-md5}" -v npm="$npm_line" 'BEGIN {
	printf "%-28s %12s %10s %10s\n", "", "events/s", "MB/s", "seconds"
	printf "%-28s %12.0f %10.1f %10.3f\n", "raw TCP-to-file copy", e / r, b / r / 1e6, r
	printf "%-28s %12.0f %10.1f %10.3f\n", "cdrflow-collector", e / c, b / c / 1e6, c
	printf "collector / raw copy: %.2f   (target >= 0.85)\n", r / c
	printf "collector events/s:   %.2f M (target >= 1 M)\n", e / c / 1e6
	printf "collector peak RSS:   %.1f MB with auth %s (target < 8 MB)\n", rss / 1024, auth
	printf "collector CPU:        %.2f CPU-s per M events\n", cpu / e * 1e6
	printf "%s\n", npm
	printf "verify: %s\n", v
}'

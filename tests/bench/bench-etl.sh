#!/usr/bin/env bash
# ETL benchmark, side by side in one run (the machine is shared and noisy):
#   1. the transform alone (segments -> COPY rows, no database), events/s
#   2. end to end (segments -> committed rows in PostgreSQL), events/s, peak RSS
#   3. a raw COPY of the very same rows from files into the same tables
# and the ratio 2/3: how close the ETL gets to PostgreSQL's own ceiling.
#
#   BENCH_ETL_EVENTS  events to generate (default 5000000)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
shared=${CDRFLOW_SHARED:-$here/../shared}
events=${BENCH_ETL_EVENTS:-5000000}
work=$(mktemp -d /tmp/cdrflow-bench-etl.XXXXXX)
chmod 755 "$work" # the cluster's owner (postgres, when root) must reach $work/pg
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54339}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }

echo "bench-etl: generating $events events from the real captures (renumbered ids)"
python3 "$here/tests/bench/gen-stream.py" --events "$events" "$shared"/captures/s0*/ami.raw* |
	"$BUILD/cdrflow-collector" --replay - --spool "$work/spool" --node bench --fsync off -q >/dev/null
pgenv=$("$here/scripts/pg.sh" start "$work/pg") || { echo "bench-etl: cannot start PostgreSQL" >&2; exit 69; }
eval "$pgenv"
"$BUILD/cdrflow-etl" migrate -q >/dev/null

t0=$(now)
"$BUILD/cdrflow-etl" transform --spool "$work/spool" > "$work/transform.out"
t1=$(now)
transform_s=$(echo "$t1 - $t0" | bc -l)
read -r n_events n_cel n_ami < <(sed -n 's/.*events=\([0-9]*\) cel=\([0-9]*\) ami_event=\([0-9]*\).*/\1 \2 \3/p' "$work/transform.out")

t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$BUILD/cdrflow-etl" --once --spool "$work/spool" > "$work/etl.out"
t1=$(now)
etl_s=$(echo "$t1 - $t0" | bc -l)
rss_kb=$(tail -n 1 "$work/rss")

# the very same rows, straight from files into fresh tables
mkdir -p "$work/copy"
"$BUILD/cdrflow-etl" transform --spool "$work/spool" --copy-out "$work/copy" >/dev/null
psql -qc "drop schema public cascade; create schema public" >/dev/null 2>&1
"$BUILD/cdrflow-etl" migrate -q >/dev/null
psql -qAtc "select cdrflow_ensure_month(min(eventtime)) from (select now() as eventtime) x" >/dev/null
months=$(cut -f2 "$work/copy/cel.copy" | cut -c1-7 | sort -u)
for m in $months; do psql -qAtc "select cdrflow_ensure_month('$m-15 00:00:00+00')" >/dev/null; done
t0=$(now)
psql -q -1 -v ON_ERROR_STOP=1 \
	-c "\\copy cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer, extra, node, seq, segno, seg_offset) from '$work/copy/cel.copy'" \
	-c "\\copy ami_event (event, eventtime, node, uniqueid, linkedid, channel, fields, seq, segno, seg_offset) from '$work/copy/ami_event.copy'"
t1=$(now)
copy_s=$(echo "$t1 - $t0" | bc -l)
rows=$(psql -Atc "select (select count(*) from cel) + (select count(*) from ami_event)")

awk -v e="$n_events" -v c="$n_cel" -v a="$n_ami" -v rows="$rows" -v tr="$transform_s" -v et="$etl_s" -v cp="$copy_s" -v rss="$rss_kb" 'BEGIN {
	printf "events %d -> cel %d + ami_event %d rows (raw COPY loaded %d)\n", e, c, a, rows
	printf "%-40s %10s %12s\n", "", "seconds", "events/s"
	printf "%-40s %10.2f %12.0f   (target >= 1 M)\n", "transform alone (no database)", tr, e / tr
	printf "%-40s %10.2f %12.0f\n", "cdrflow-etl --once end to end", et, e / et
	printf "%-40s %10.2f %12s\n", "raw COPY of the same rows", cp, "-"
	printf "end to end / raw COPY: %.2f (target <= 1.3)\n", et / cp
	printf "etl peak RSS: %.1f MB (target < 64 MB)\n", rss / 1024
}'

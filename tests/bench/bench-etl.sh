#!/usr/bin/env bash
# ETL benchmark, side by side in one run (the machine is shared and noisy),
# at each size of BENCH_ETL_EVENTS:
#   1. the transform alone (segments -> COPY rows, no database), events/s
#   2. end to end (segments -> committed rows in PostgreSQL), with every
#      analytics step and rating (beside the load, the default since 0079),
#      then with them in each batch's transaction (etl.analytics_overlap:
#      no), then without them
#   3. a raw COPY of the very same rows (the transform's --copy-out, each
#      table's own .columns) into fresh tables
# and the ratios: end to end / raw COPY, analytics on / off (which must not
# grow with the size).
#
#   BENCH_ETL_EVENTS  sizes, events (default "1000000"; the issue's table:
#                     "1000000 2000000 5000000 10000000")
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
shared=${CDRFLOW_SHARED:-$here/../shared}
sizes=${BENCH_ETL_EVENTS:-1000000}
work=$(mktemp -d /tmp/cdrflow-bench-etl.XXXXXX)
chmod 755 "$work" # the cluster's owner (postgres, when root) must reach $work/pg
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54339}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }

pgenv=$("$here/scripts/pg.sh" start "$work/pg") || { echo "bench-etl: cannot start PostgreSQL" >&2; exit 69; }
eval "$pgenv"
"$BUILD/cdrflow-etl" migrate -q >/dev/null

# the analytics configuration the bench runs with: tenants, trunks, rating
cat >"$work/decks.csv" <<'CSV'
prefix,description,rate_per_min,connect_fee,increment,grace,effective_from,effective_to
88,International networks,0.50,,60/60,,2020-01-01,
882,International networks,0.60,0.01,1/1,,2020-01-01,
239,Sao Tome,0.30,,30/6,3,2020-01-01,
44,United Kingdom,0.01,,60/1,,2020-01-01,
CSV
cat >"$work/etl.yaml" <<YAML
cdr: { unanswered: yes, congestion: yes, endbeforehexten: no }
tenants:
  trunks: "SIP/loop-*"
  rules:
    - { tenant: tenantA, accountcode: tenantA }
    - { tenant: tenantB, accountcode: tenantB }
numbering:
  - { country_code: "44", national_prefix: "0", international_prefix: "00" }
rating:
  buy:
    - { carrier: loop, deck: $work/decks.csv, trunk: "SIP/loop-*" }
  sell:
    - { tenant: tenantA, deck: $work/decks.csv }
    - { tenant: tenantB, deck: $work/decks.csv }
YAML
cfg=(-c "$work/etl.yaml")

fresh_db() {
	psql -qc "drop schema public cascade; create schema public" >/dev/null 2>&1
	"$BUILD/cdrflow-etl" migrate -q >/dev/null
}
{ cat "$work/etl.yaml"; printf 'etl:\n  analytics_overlap: no\n'; } >"$work/etl-inline.yaml"
printf 'cdr: { unanswered: yes, congestion: yes, endbeforehexten: no }\n' >"$work/plain.yaml"

run_size() { # events
	local events=$1
	rm -rf "$work/spool" "$work/copy"
	echo "bench-etl: generating $events events from the real captures (renumbered ids)"
	python3 "$here/tests/bench/gen-stream.py" --events "$events" "$shared"/captures/s0*/ami.raw* |
		"$BUILD/cdrflow-collector" --replay - --spool "$work/spool" --node bench --fsync off -q >/dev/null

	t0=$(now)
	"$BUILD/cdrflow-etl" transform "${cfg[@]}" --spool "$work/spool" > "$work/transform.out" 2>/dev/null
	t1=$(now)
	transform_s=$(echo "$t1 - $t0" | bc -l)
	read -r n_events n_cel n_ami n_legs n_calls < <(sed -n 's/.*events=\([0-9]*\) cel=\([0-9]*\) ami_event=\([0-9]*\) legs=\([0-9]*\) calls=\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$work/transform.out")

	# end to end with every analytics step (QoS, queues, fraud rules...) and rating
	fresh_db
	t0=$(now)
	/usr/bin/time -f "%M" -o "$work/rss" "$BUILD/cdrflow-etl" --once "${cfg[@]}" --spool "$work/spool" > "$work/etl.out" 2>/dev/null
	t1=$(now)
	etl_s=$(echo "$t1 - $t0" | bc -l)
	rss_kb=$(tail -n 1 "$work/rss")

	# the same, each batch's analytics in its own transaction
	fresh_db
	t0=$(now)
	if "$BUILD/cdrflow-etl" --once -c "$work/etl-inline.yaml" --spool "$work/spool" > /dev/null 2>&1; then
		t1=$(now)
		an_s=$(echo "$t1 - $t0" | bc -l)
	else
		an_s=0 # a build without the option
	fi

	# the same without the analytics steps and without rating
	fresh_db
	psql -qc "delete from analytics_step" >/dev/null
	t0=$(now)
	/usr/bin/time -f "%U %S" -o "$work/cpu" "$BUILD/cdrflow-etl" --once -c "$work/plain.yaml" --spool "$work/spool" \
		> "$work/etl-plain.out" 2>/dev/null
	t1=$(now)
	plain_s=$(echo "$t1 - $t0" | bc -l)
	read -r plain_user plain_sys < <(tail -n 1 "$work/cpu")

	# the very same rows (as --once without analytics writes them), straight from files into fresh tables
	mkdir -p "$work/copy"
	"$BUILD/cdrflow-etl" transform -c "$work/plain.yaml" --spool "$work/spool" --copy-out "$work/copy" >/dev/null 2>&1
	fresh_db
	months=$(cut -f2 "$work/copy/cel.copy" | cut -c1-7 | sort -u)
	for m in $months; do psql -qAtc "select cdrflow_ensure_month('$m-15 00:00:00+00')" >/dev/null; done
	local args=() t
	for t in cel ami_event cdr call; do
		args+=(-c "\\copy $t ($(cat "$work/copy/$t.columns")) from '$work/copy/$t.copy'")
	done
	t0=$(now)
	psql -q -1 -v ON_ERROR_STOP=1 "${args[@]}"
	t1=$(now)
	copy_s=$(echo "$t1 - $t0" | bc -l)
	rows=$(psql -Atc "select (select count(*) from cel) + (select count(*) from ami_event) + (select count(*) from cdr) + (select count(*) from call)")

	awk -v e="$n_events" -v c="$n_cel" -v a="$n_ami" -v l="$n_legs" -v k="$n_calls" -v rows="$rows" -v tr="$transform_s" \
	    -v et="$etl_s" -v an="$an_s" -v pl="$plain_s" -v cp="$copy_s" -v rss="$rss_kb" -v pu="$plain_user" -v ps="$plain_sys" 'BEGIN {
		printf "events %d -> cel %d + ami_event %d + cdr %d legs + call %d rows (raw COPY loaded %d)\n", e, c, a, l, k, rows
		printf "%-52s %10s %12s\n", "", "seconds", "events/s"
		printf "%-52s %10.2f %12.0f\n", "transform alone (no database, CDR engine included)", tr, e / tr
		printf "%-52s %10.2f %12.0f\n", "cdrflow-etl --once, analytics and rating", et, e / et
		if (an > 0) printf "%-52s %10.2f %12.0f\n", "... analytics in the batch transaction", an, e / an
		printf "%-52s %10.2f %12.0f\n", "cdrflow-etl --once, no analytics steps/rating", pl, e / pl
		printf "%-52s %10.2f %12s\n", "raw COPY of the same rows", cp, "-"
		printf "%d events: end to end (no analytics) / raw COPY: %.2f (target <= 1.15)\n", e, pl / cp
		printf "%d events: cdrflow-etl CPU, no analytics: %.2f s user + %.2f s sys = %.2f s per M events\n", e, pu, ps, (pu + ps) / e * 1e6
		printf "%d events: analytics on / off: %.2f (target <= 1.10, flat)\n", e, et / pl
		if (an > 0) printf "%d events: analytics in the batch transaction / off: %.2f\n", e, an / pl
		printf "%d events: transform %.2f M events/s (target >= 1 M)\n", e, e / tr / 1e6
		printf "etl peak RSS: %.1f MB (target < 64 MB)\n", rss / 1024
	}'
}

for n in $sizes; do
	run_size "$n"
done

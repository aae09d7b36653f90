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
#   4. with analytics, the stream's next as many events (the same PBX, later
#      calls) loaded into the warehouse that holds the first: what the
#      pipeline absorbs once the warehouse has filled
# and the ratios: end to end / raw COPY, analytics on / off (which must not
# grow with the size), the calls/s absorbed into an empty warehouse and into
# one that holds the stream already (which must not fall).
#
#   BENCH_ETL_EVENTS  sizes, events (default "1000000"; the issue's table:
#                     "1000000 2000000 5000000 10000000")
#   BENCH_ETL_REPEAT  rounds at each size (default 3): each round runs the
#                     six one after the other, and every figure is the
#                     median of its rounds (the rounds are printed too), so
#                     that one slow moment of the machine moves no ratio
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
shared=${CDRFLOW_SHARED:-$here/../shared}
sizes=${BENCH_ETL_EVENTS:-1000000}
repeat=${BENCH_ETL_REPEAT:-3}
work=$(mktemp -d /tmp/cdrflow-bench-etl.XXXXXX)
chmod 755 "$work" # the cluster's owner (postgres, when root) must reach $work/pg
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54339}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }

pgenv=$("$here/scripts/pg.sh" start "$work/pg") || { echo "bench-etl: cannot start PostgreSQL" >&2; exit 69; }
eval "$pgenv"
"$BUILD/cdrflow-etl" migrate -q >/dev/null

# the analytics configuration the bench runs with: tenants, trunks, rating,
# fraud rules
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
# the demo's fraud rules and tenant limit (tests/data/demo/cdrflow.yaml)
fraud:
  outbound_contexts: [internal]
  inbound_contexts: [did, sip-in, carrierside, carrier, calleephone, handset]
  rules:
    - { name: irsf-hotlist, kind: hotlist, severity: critical, prefixes: ["+882", "+881", "+239"] }
    - { name: short-call-flood, kind: short_calls, max_billsec: 6, count: 3, window: 5m }
alerts:
  tenants:
    - { tenant: "*", max_concurrent: 20 }
YAML
cfg=(-c "$work/etl.yaml")

fresh_db() {
	psql -qc "drop schema public cascade; create schema public" >/dev/null 2>&1
	"$BUILD/cdrflow-etl" migrate -q >/dev/null
}
{ cat "$work/etl.yaml"; printf 'etl:\n  analytics_overlap: no\n'; } >"$work/etl-inline.yaml"
printf 'cdr: { unanswered: yes, congestion: yes, endbeforehexten: no }\n' >"$work/plain.yaml"

# The median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
secs() { echo "$2 - $1" | bc -l; }

# One round: the six, one after the other; appends each one's seconds to
# the arrays tr, et, fl, an, pl, cp (and the CPU and RSS of its runs).
round() {
	local t0 t1 args=() t
	t0=$(now)
	"$BUILD/cdrflow-etl" transform "${cfg[@]}" --spool "$work/spool" > "$work/transform.out" 2>/dev/null
	tr+=("$(secs "$t0" "$(now)")")

	# end to end with every analytics step (QoS, queues, fraud rules...) and rating
	fresh_db
	t0=$(now)
	/usr/bin/time -f "%M" -o "$work/rss" "$BUILD/cdrflow-etl" --once "${cfg[@]}" --spool "$work/spool" > "$work/etl.out" 2>/dev/null
	et+=("$(secs "$t0" "$(now)")")
	rss+=("$(tail -n 1 "$work/rss")")

	# then the stream's next events into that warehouse: the spool as the
	# collector goes on writing it (a copy, the stream's second part appended)
	rm -rf "$work/fill" && cp -r "$work/spool" "$work/fill"
	"$BUILD/cdrflow-collector" --replay "$work/part2.ami" --spool "$work/fill" --node bench --fsync off -q >/dev/null
	t0=$(now)
	"$BUILD/cdrflow-etl" --once "${cfg[@]}" --spool "$work/fill" > "$work/fill.out" 2>/dev/null
	fl+=("$(secs "$t0" "$(now)")")
	rm -rf "$work/fill"

	# the same, each batch's analytics in its own transaction
	fresh_db
	t0=$(now)
	if "$BUILD/cdrflow-etl" --once -c "$work/etl-inline.yaml" --spool "$work/spool" > /dev/null 2>&1; then
		an+=("$(secs "$t0" "$(now)")")
	else
		an+=(0) # a build without the option
	fi

	# the same without the analytics steps and without rating
	fresh_db
	psql -qc "delete from analytics_step" >/dev/null
	t0=$(now)
	/usr/bin/time -f "%U %S" -o "$work/cpu" "$BUILD/cdrflow-etl" --once -c "$work/plain.yaml" --spool "$work/spool" \
		> "$work/etl-plain.out" 2>/dev/null
	pl+=("$(secs "$t0" "$(now)")")
	read -r t1 t < <(tail -n 1 "$work/cpu")
	pu+=("$t1")
	ps+=("$t")

	# the very same rows (as --once without analytics writes them), straight from files into fresh tables
	fresh_db
	for t in $months; do psql -qAtc "select cdrflow_ensure_month('$t-15 00:00:00+00')" >/dev/null; done
	for t in cel ami_event cdr call; do
		args+=(-c "\\copy $t ($(cat "$work/copy/$t.columns")) from '$work/copy/$t.copy'")
	done
	t0=$(now)
	psql -q -1 -v ON_ERROR_STOP=1 "${args[@]}"
	cp+=("$(secs "$t0" "$(now)")")
}

run_size() { # events
	local events=$1 i
	rm -rf "$work/spool" "$work/copy"
	echo "bench-etl: generating $events events from the real captures (renumbered ids)"
	python3 "$here/tests/bench/gen-stream.py" --events "$events" "$shared"/captures/s0*/ami.raw* 2>"$work/gen.err" |
		"$BUILD/cdrflow-collector" --replay - --spool "$work/spool" --node bench --fsync off -q >/dev/null
	# the same PBX's next calls: the repetitions after these
	reps=$(sed -n 's/.* in \([0-9]*\) repetitions/\1/p' "$work/gen.err")
	python3 "$here/tests/bench/gen-stream.py" --events "$events" --first-rep "$reps" "$shared"/captures/s0*/ami.raw* \
		>"$work/part2.ami" 2>/dev/null
	mkdir -p "$work/copy"
	"$BUILD/cdrflow-etl" transform -c "$work/plain.yaml" --spool "$work/spool" --copy-out "$work/copy" >/dev/null 2>&1
	months=$(cut -f2 "$work/copy/cel.copy" | cut -c1-7 | sort -u)

	tr=() et=() fl=() an=() pl=() cp=() pu=() ps=() rss=()
	for ((i = 1; i <= repeat; i++)); do
		echo "bench-etl: $events events, round $i of $repeat"
		round
	done
	read -r n_events n_cel n_ami n_legs n_calls < <(sed -n 's/.*events=\([0-9]*\) cel=\([0-9]*\) ami_event=\([0-9]*\) legs=\([0-9]*\) calls=\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$work/transform.out")
	rows=$(psql -Atc "select (select count(*) from cel) + (select count(*) from ami_event) + (select count(*) from cdr) + (select count(*) from call)")
	local fill_events fill_calls
	read -r fill_events fill_calls < <(sed -n 's/.*events=\([0-9]*\) .* calls=\([0-9]*\) .*/\1 \2/p' "$work/fill.out")
	rm -f "$work/part2.ami"

	awk -v e="$n_events" -v c="$n_cel" -v a="$n_ami" -v l="$n_legs" -v k="$n_calls" -v rows="$rows" -v R="$repeat" \
	    -v tr="$(median "${tr[@]}")" -v et="$(median "${et[@]}")" -v an="$(median "${an[@]}")" \
	    -v pl="$(median "${pl[@]}")" -v cp="$(median "${cp[@]}")" -v rss="$(median "${rss[@]}")" \
	    -v pu="$(median "${pu[@]}")" -v ps="$(median "${ps[@]}")" \
	    -v fl="$(median "${fl[@]}")" -v fe="$fill_events" -v fc="$fill_calls" -v rfl="${fl[*]}" \
	    -v rtr="${tr[*]}" -v ret="${et[*]}" -v ran="${an[*]}" -v rpl="${pl[*]}" -v rcp="${cp[*]}" '
	function rounds(s,   n, v, i, out) {
		n = split(s, v, " ")
		for (i = 1; i <= n; i++)
			out = out sprintf("%s%.2f", i > 1 ? " " : "", v[i])
		return out
	}
	# a ratio: the median of the rounds'"'"' own (each measured side by side),
	# then those of each round
	function ratio(a, b,   n, x, y, r, i, j, t, out) {
		n = split(a, x, " ")
		split(b, y, " ")
		for (i = 1; i <= n; i++)
			r[i] = x[i] / y[i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && r[j - 1] > r[j]; j--) {
				t = r[j]; r[j] = r[j - 1]; r[j - 1] = t
			}
		out = sprintf("%.2f", (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2)
		if (n > 1) {
			out = out " (rounds:"
			for (i = 1; i <= n; i++)
				out = out sprintf(" %.2f", x[i] / y[i])
			out = out ")"
		}
		return out
	}
	# calls/s into the filled warehouse over calls/s into the empty one,
	# the median of the rounds'"'"' own
	function ratio2(f, t, nf, nt,   n, x, y, i, a, b) {
		n = split(f, x, " ")
		split(t, y, " ")
		for (i = 1; i <= n; i++) {
			a = a sprintf("%s%.6f", i > 1 ? " " : "", nf / x[i])
			b = b sprintf("%s%.6f", i > 1 ? " " : "", nt / y[i])
		}
		return ratio(a, b)
	}
	BEGIN {
		printf "events %d -> cel %d + ami_event %d + cdr %d legs + call %d rows (raw COPY loaded %d)\n", e, c, a, l, k, rows
		printf "medians of %d rounds, each round the six one after the other (a ratio: the median of the rounds'"'"' own)\n", R
		printf "%-52s %10s %12s  %s\n", "", "seconds", "events/s", "rounds"
		printf "%-52s %10.2f %12.0f  %s\n", "transform alone (no database, CDR engine included)", tr, e / tr, rounds(rtr)
		printf "%-52s %10.2f %12.0f  %s\n", "cdrflow-etl --once, analytics and rating", et, e / et, rounds(ret)
		printf "%-52s %10.2f %12.0f  %s\n", "... the next " fe " events into that warehouse", fl, fe / fl, rounds(rfl)
		if (an > 0) printf "%-52s %10.2f %12.0f  %s\n", "... analytics in the batch transaction", an, e / an, rounds(ran)
		printf "%-52s %10.2f %12.0f  %s\n", "cdrflow-etl --once, no analytics steps/rating", pl, e / pl, rounds(rpl)
		printf "%-52s %10.2f %12s  %s\n", "raw COPY of the same rows", cp, "-", rounds(rcp)
		printf "%d events: end to end (no analytics) / raw COPY: %s (target <= 1.15)\n", e, ratio(rpl, rcp)
		printf "%d events: cdrflow-etl CPU, no analytics: %.2f s user + %.2f s sys = %.2f s per M events\n", e, pu, ps, (pu + ps) / e * 1e6
		printf "%d events: analytics on / off: %s (target <= 1.10, flat)\n", e, ratio(ret, rpl)
		if (an > 0) printf "%d events: analytics in the batch transaction / off: %s\n", e, ratio(ran, rpl)
		printf "%d events: transform %.2f M events/s (target >= 1 M)\n", e, e / tr / 1e6
		printf "%d events: calls/s with analytics: %.0f into an empty warehouse, %.0f into one that holds them (%d calls more); filled / empty: %s (target >= 2000 calls/s, flat); without analytics: %.0f calls/s\n", e, k / et, fc / fl, fc, ratio2(rfl, ret, fc, k), k / pl
		printf "etl peak RSS: %.1f MB (target < 64 MB)\n", rss / 1024
	}'
}

for n in $sizes; do
	run_size "$n"
done

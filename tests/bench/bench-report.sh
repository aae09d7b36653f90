#!/usr/bin/env bash
# cdrflow-report benchmark (not part of make check):
#   1. CDR export: BENCH_REPORT_ROWS synthetic legs (default 1000000) streamed
#      to CSV; rows/s and the client's peak RSS
#   2. the monthly tenant billing statement over the same month as PDF + XLSX;
#      wall time, and whether its per-tenant figures came from the rollups
#      (rollup_hourly_v, when the schema has it) or from the legs (cdr)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$here/$BUILD ;; esac
rows=${BENCH_REPORT_ROWS:-1000000}
work=$(mktemp -d /tmp/cdrflow-bench-report.XXXXXX)
chmod 755 "$work" # the cluster's owner (postgres, when root) must reach $work/pg
export CDRFLOW_PGPORT=${CDRFLOW_PGPORT:-54349}
cleanup() { "$here/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
REPORT=$BUILD/cdrflow-report
[ -x "$REPORT" ] || { echo "bench-report: no $REPORT (run make)" >&2; exit 66; }

pgenv=$("$here/scripts/pg.sh" start "$work/pg") || { echo "bench-report: cannot start PostgreSQL" >&2; exit 69; }
eval "$pgenv"
"$BUILD/cdrflow-etl" migrate -q >/dev/null
echo "bench-report: inserting $rows synthetic legs (January 2031, 4 tenants, rated)"
psql -q -Atc "select cdrflow_ensure_month('2031-01-15')" >/dev/null
psql -q -Atc "insert into cdr (calldate, answer, \"end\", src, dst, dcontext, channel, dstchannel, lastapp,
	duration, billsec, disposition, uniqueid, linkedid, node, tenant, direction, dst_e164, carrier,
	rate_status, buy_cost, sell_cost, margin, buy_prefix, sell_prefix)
    select t, t + interval '2 s', t + interval '62 s', '1001', '0044207946' || (i % 1000), 'outbound',
	'SIP/a-' || i, 'SIP/loop-' || i, 'Dial', 62, 60, 'ANSWERED', 'syn-' || i, 'syn-' || i, 'bench',
	'tenant' || (i % 4), 'outbound', '+44207946' || (i % 1000), 'loopcarrier', 'rated',
	1000 + i % 7, 2000 + i % 11, 1000 + i % 11 - i % 7, '44' || (i % 3), '44' || (i % 5)
    from generate_series(1, $rows) i,
	 lateral (select timestamptz '2031-01-01 00:00+00' + (i % 2678400) * interval '1 s' as t) x"
psql -q -Atc "analyze cdr" >/dev/null
if [ "$(psql -Atc "select to_regclass('rollup_hourly_v') is not null")" = t ]; then
	source="rollups (rollup_hourly_v exists)"
else
	source="base tables (cdr; no rollup_hourly_v in this schema)"
fi

t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$REPORT" -q --templates "$here/templates" run cdr-export \
	--from 2031-01 -f csv -o "$work/out" >/dev/null
t1=$(now)
lines=$(wc -l <"$work/out/cdr-export-2031-01-01-2031-01-31.csv")
s=$(echo "$t1 - $t0" | bc -l)
printf 'bench-report: cdr-export CSV: %d rows in %.2f s = %.0f rows/s, peak RSS %d kB\n' \
	$((lines - 1)) "$s" "$(echo "($lines - 1) / $s" | bc -l)" "$(tail -n 1 "$work/rss")"

t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss2" "$REPORT" --templates "$here/templates" run tenant-billing \
	--from 2031-01 -f pdf,xlsx -o "$work/out" >/dev/null 2>"$work/billing.err"
t1=$(now)
printf 'bench-report: tenant-billing PDF+XLSX for the month: %.2f s, peak RSS %d kB, per-tenant figures from %s\n' \
	"$(echo "$t1 - $t0" | bc -l)" "$(tail -n 1 "$work/rss2")" "$source"
